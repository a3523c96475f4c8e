"""Celery tasks: the event consumer and the outbox relay (thin: each calls a service), and how events are put on
the broker for the consumer: publishes the broker confirmed, on pooled connections dropped at the first doubt.

RabbitMQ (py-amqp) is the broker this publisher is written for: publisher confirms are its extension of AMQP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from celery import current_app, shared_task
from django.conf import settings
from kombu import Connection

from recommendations import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="recommendations.handle_recommendation_event", max_retries=None)
def handle_recommendation_event_task(self, event_id: int) -> bool:
    """Fan one recommendation event out to its consumers' deliveries; retried with backoff, then `failed`."""
    try:
        return services.handle_recommendation_event(event_id=event_id)
    except Exception as exc:
        final = self.request.retries >= settings.EVENT_HANDLER_MAX_RETRIES
        services.record_event_failure(event_id=event_id, error=f"handling failed: {exc!r}", final=final)
        if final:
            logger.error("Event %s failed after %s retries: %r", event_id, self.request.retries, exc)
            return False
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 300)) from exc


@shared_task(name="recommendations.handle_recommendation_events")
def handle_recommendation_events_task(event_ids: list[int]) -> list[bool]:
    """Fan several events out together (one message, one transaction); returns, per event, whether it was handled.

    If the batch fails as a whole, each of its events is sent again alone to the task above, which retries it
    with backoff: a poison event is then failed on its own, and the others go through.
    """
    try:
        handled = set(services.handle_recommendation_events(event_ids=event_ids))
    except Exception as exc:  # noqa: BLE001 - nothing of the batch was committed: each event is retried alone
        logger.warning("A batch of %s events failed (%r); each is retried on its own.", len(event_ids), exc)
        for event_id in event_ids:
            handle_recommendation_event_task.apply_async(args=[event_id], countdown=1)
        return [False] * len(event_ids)
    return [event_id in handled for event_id in event_ids]


@shared_task(bind=True, name="recommendations.deliver_event", max_retries=None)
def deliver_event_task(self, delivery_id: int) -> bool:
    """Retry one consumer's delivery of one event, on its own, with exponential backoff; then it is `failed`.

    The event task runs every delivery once in line; only a failed one comes here.
    """
    retry_in = services.attempt_delivery(delivery_id=delivery_id)
    if retry_in is not None:
        raise self.retry(countdown=retry_in)
    return True


@shared_task(name="recommendations.publish_pending_events")
def publish_pending_events_task() -> int:
    """The outbox relay, run by beat: publish what is due (pending, or published long ago and never consumed).

    It drains a backlog batch after batch within OUTBOX_RELAY_TIME_BUDGET_SECONDS; the next tick goes on.
    """
    return services.publish_pending_events(time_budget=settings.OUTBOX_RELAY_TIME_BUDGET_SECONDS)


@dataclass
class Publication:
    """What the broker said about events put on it: which it confirmed, which it did not (and why)."""

    confirmed: list[int] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)  # tried, and not confirmed: nacked, timed out, failed
    error: str = ""


class PublishFailed(Exception):
    """The broker did not confirm an event: it stays in the outbox for the relay."""


def publish_events(event_ids: list[int]) -> Publication:
    """Put events on the broker for the consumer, in order, and say which ones the broker confirmed.

    All of them go out on one channel in confirm mode (RabbitMQ's publisher confirms) before the confirms are
    awaited, so a backlog drains at the broker's pace, not one round trip per event; EVENT_BATCH_SIZE events share a
    message (one task, one transaction in the worker), and a message confirmed confirms all of its events. The link
    may stay silent OUTBOX_CONFIRM_TIMEOUT_SECONDS at most, on any step (connect aside:
    CELERY_BROKER_CONNECTION_TIMEOUT): then the events not confirmed count as failed and wait for the relay. Nothing
    is retried here. The pooled connection used is dropped at the first failure without a word to the broker
    (`collect`): its socket may be dead or black-holed, and a confirm still owed on it could be taken for another
    message's; the pool opens a fresh one for the next publish. Eager mode (no broker) runs the consumer in the
    call: all confirmed.
    """
    app = current_app
    if not event_ids:
        return Publication()
    if app.conf.task_always_eager:
        for batch in _batches(event_ids):
            _send(batch)
        return Publication(confirmed=list(event_ids))
    try:
        connection = app.pool.acquire(block=True, timeout=app.conf.broker_connection_timeout)
    except Exception as exc:  # noqa: BLE001 - every pooled connection busy: the relay sends them later
        return Publication(unconfirmed=event_ids[:1], error=f"publish failed: {exc!r}")
    try:
        return _publish_confirmed(connection, event_ids)
    finally:
        connection.release()  # back to the pool (already `collect`ed if it failed)


def _publish_confirmed(connection: Connection, event_ids: list[int]) -> Publication:
    timeout = settings.OUTBOX_CONFIRM_TIMEOUT_SECONDS
    sent: list[list[int]] = []  # delivery tag n (from 1, per channel in confirm mode) is sent[n - 1]
    acked: set[int] = set()
    nacked: set[int] = set()

    def settle(into: set[int]) -> Callable[[int, bool], None]:
        def on_confirm(delivery_tag: int, multiple: bool) -> None:
            into.update(range(1, delivery_tag + 1) if multiple else (delivery_tag,))

        return on_confirm

    try:
        _drop_if_closed_by_peer(connection)
        # One attempt within CELERY_BROKER_CONNECTION_TIMEOUT: kombu's default would sleep and try again,
        # seconds a request cannot spare; the relay is the one that tries again.
        connection.ensure_connection(max_retries=0)
        # Every blocking read or write below (channel open, confirm.select, declare, publish, close) gives up
        # after `timeout`: a black-holed link costs that much, not the kernel's TCP timeout.
        with connection.connection.transport.having_timeout(timeout):
            channel = connection.channel()
            channel.confirm_select()
            # The `confirm_publish` transport option makes py-amqp wait for each confirm inside basic_publish;
            # here the confirms are awaited together, below, so this channel publishes without waiting.
            channel.basic_publish = channel._basic_publish
            channel.events["basic_ack"].add(settle(acked))
            channel.events["basic_nack"].add(settle(nacked))
            producer = current_app.amqp.Producer(channel, auto_declare=False)
            for batch in _batches(event_ids):
                sent.append(batch)
                _send(batch, producer=producer, retry=False)
            while len(acked | nacked) < len(sent):
                connection.drain_events(timeout=timeout)  # raises TimeoutError after `timeout` of silence
            channel.close()
        if nacked:
            raise PublishFailed(f"the broker refused (nack) {len(nacked)} of {len(sent)} messages")
    except Exception as exc:  # noqa: BLE001 - whatever failed, the unconfirmed events wait for the relay
        connection.collect()
        confirmed_batches = [batch for tag, batch in enumerate(sent, start=1) if tag in acked and tag not in nacked]
        confirmed = [event_id for batch in confirmed_batches for event_id in batch]
        tried = [event_id for batch in sent for event_id in batch] or event_ids[:1]
        return Publication(
            confirmed=confirmed,
            unconfirmed=[event_id for event_id in tried if event_id not in confirmed],
            error=f"publish failed: {exc!r}"[:2000],
        )
    return Publication(confirmed=[event_id for batch in sent for event_id in batch])


def _batches(event_ids: list[int]) -> list[list[int]]:
    size = max(1, settings.EVENT_BATCH_SIZE)
    return [event_ids[start : start + size] for start in range(0, len(event_ids), size)]


def _send(batch: list[int], **options) -> None:
    """One message: a lone event to the single-event task (its retries are its own), several to the batch task."""
    if len(batch) == 1:
        handle_recommendation_event_task.apply_async(args=batch, **options)
    else:
        handle_recommendation_events_task.apply_async(args=[batch], **options)


def send_event_to_consumer(event_id: int) -> None:
    """Put one event on the broker for the consumer; return once the broker confirmed it, raise otherwise."""
    publication = publish_events([event_id])
    if publication.error:
        raise PublishFailed(publication.error)


def _drop_if_closed_by_peer(connection: Connection) -> None:
    """Forget a pooled connection that the broker (or the network) closed or reset while it sat in the pool.

    A non-blocking read finds what arrived meanwhile: nothing (alive as far as anyone can tell), a heartbeat,
    or the end of the stream; without this the first publish after a broker restart would fail for nothing.
    """
    if not connection.connected:
        return
    try:
        connection.drain_events(timeout=0)
    except TimeoutError:
        return  # nothing to read: the usual case
    except Exception as exc:  # noqa: BLE001 - whatever the read found, this connection is done
        logger.info("Pooled broker connection is dead (%r); opening a fresh one.", exc)
        connection.collect()
