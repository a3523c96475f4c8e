"""Celery tasks: the event consumer and the outbox relay (thin: each calls a service), and how an event is put on
the broker for the consumer: one publish the broker confirmed, on a pooled connection dropped at the first doubt."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from celery import current_app, shared_task
from django.conf import settings
from kombu import Connection

from recommendations import services

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="recommendations.handle_recommendation_event", max_retries=None)
def handle_recommendation_event_task(self, event_id: int) -> bool:
    """Consume one recommendation event; retried with exponential backoff, then marked `failed`."""
    try:
        return services.handle_recommendation_event(event_id=event_id)
    except Exception as exc:
        final = self.request.retries >= settings.EVENT_HANDLER_MAX_RETRIES
        services.record_event_failure(event_id=event_id, error=f"handling failed: {exc!r}", final=final)
        if final:
            logger.error("Event %s failed after %s retries: %r", event_id, self.request.retries, exc)
            return False
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 300)) from exc


@shared_task(name="recommendations.publish_pending_events")
def publish_pending_events_task() -> int:
    """The outbox relay, run by beat: publish what is due (pending, or published long ago and never consumed).

    It drains a backlog batch after batch within OUTBOX_RELAY_TIME_BUDGET_SECONDS; the next tick goes on.
    """
    return services.publish_pending_events(time_budget=settings.OUTBOX_RELAY_TIME_BUDGET_SECONDS)


@contextmanager
def broker_connection() -> Iterator[Connection | None]:
    """A connection of Celery's pool for publishing several events in a row (None when tasks run eagerly).

    Connecting is lazy: the first publish connects, within CELERY_BROKER_CONNECTION_TIMEOUT.
    """
    app = current_app
    if app.conf.task_always_eager:
        yield None
        return
    connection = app.pool.acquire(block=True, timeout=app.conf.broker_connection_timeout)
    try:
        yield connection
    finally:
        connection.release()  # back to the pool; `collect`ed first if a publish on it failed


def send_event_to_consumer(event_id: int, *, connection: Connection | None = None) -> None:
    """Put one event on the broker for the consumer and return once the broker confirmed it; raise otherwise.

    The publish waits at most OUTBOX_CONFIRM_TIMEOUT_SECONDS for RabbitMQ's confirm (the `confirm_publish`
    transport option puts every channel in confirm mode), and is not retried here: an event that failed waits
    in the outbox for the relay. A connection on which a publish failed is dropped without a word to the broker
    (`collect`): its socket may be dead or black-holed, and a confirm still owed on it would be taken for the
    next message's, so it is never used again; the pool opens a fresh one for the next publish.
    """
    if current_app.conf.task_always_eager:
        handle_recommendation_event_task.apply_async(args=[event_id])
        return
    if connection is None:
        with broker_connection() as pooled:
            send_event_to_consumer(event_id, connection=pooled)
        return
    _drop_if_closed_by_peer(connection)
    timeout = settings.OUTBOX_CONFIRM_TIMEOUT_SECONDS
    try:
        # One attempt within CELERY_BROKER_CONNECTION_TIMEOUT: kombu's default would sleep and try again,
        # seconds a request cannot spare; the relay is the one that tries again.
        connection.ensure_connection(max_retries=0)
        handle_recommendation_event_task.apply_async(
            args=[event_id], connection=connection, retry=False, timeout=timeout, confirm_timeout=timeout
        )
    except BaseException:
        connection.collect()
        raise


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
