"""The event consumer: what the worker does with events: fan each out, one delivery per enabled consumer.

`handle_recommendation_events` (the event task; the relay sends a backlog in batches of EVENT_BATCH_SIZE events per
message) handles a batch in one transaction, which locks the events, writes their missing delivery rows, runs every
pending ordinary consumer (each in a savepoint of its own, so one that fails leaves the others' work standing; once
for the whole batch if it has `handle_batch`), records those deliveries delivered with one UPDATE, and commits the
claims of the at-most-once ones (the e-mail); after the commit those act, and are recorded in one short transaction.
A failed delivery goes to a task of its own (`deliver_event`) that retries it alone with backoff, until it is
delivered or `failed`; an event is `consumed` once all its deliveries are delivered. It is driven by the event rows
alone (no signal), so events written by bulk inserts fan out alike; a re-published event only re-sends its
deliveries still pending, and a consumed one is not handled again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from recommendations.consumers import EventConsumer, enabled_consumers
from recommendations.consumers.analytics import count_recommendation
from recommendations.consumers.email import notify_care_team
from recommendations.models import Delivery, DeliveryStatus, EventStatus, RecommendationEvent
from recommendations.services.deliveries import (
    OUTCOME_UNKNOWN,
    act_on_claims,
    delivery_failed,
    fail_delivery,
    settle_events,
)

logger = logging.getLogger(__name__)

__all__ = ["count_recommendation", "handle_recommendation_event", "handle_recommendation_events", "notify_care_team"]


@dataclass
class _Batch:
    """What the events' transaction did, and left to do after its commit."""

    handled: list[int] = field(default_factory=list)  # events neither gone nor consumed before
    claimed: list[tuple[int, EventConsumer, RecommendationEvent]] = field(default_factory=list)  # act now
    failed: list[tuple[int, Exception]] = field(default_factory=list)  # ordinary, rolled back: record and retry


def handle_recommendation_event(*, event_id: int) -> bool:
    """Fan one event out to its consumers; returns False if there was nothing to do (consumed, or gone)."""
    return bool(handle_recommendation_events(event_ids=[event_id]))


def handle_recommendation_events(*, event_ids: list[int]) -> list[int]:
    """Fan events out to their consumers, together; returns those handled (the others: consumed, or gone).

    Raises if the batch failed as a whole (nothing of it committed). Idempotent, event by event: a redelivered
    message finds the deliveries written and sends only those still pending; a consumed event is skipped.
    """
    from recommendations import tasks

    batch = _deliver_ordinary_and_claim(event_ids=event_ids)
    retries = [(pk, delivery_failed(delivery_id=pk, exc=exc)) for pk, exc in batch.failed]
    retries += act_on_claims(batch.claimed)
    # A failed delivery is handed to a task of its own, which retries it alone with backoff.
    for pk, retry_in in retries:
        if retry_in is not None:
            tasks.deliver_event_task.apply_async(args=[pk], countdown=retry_in)
    return batch.handled


@transaction.atomic
def _deliver_ordinary_and_claim(*, event_ids: list[int]) -> _Batch:
    """The events' transaction (see the module docstring)."""
    locked = list(RecommendationEvent.objects.select_for_update().filter(pk__in=event_ids).order_by("pk"))
    for gone in sorted(set(event_ids) - {event.pk for event in locked}):
        logger.warning("Event %s does not exist; message dropped.", gone)
    events = {}
    for event in locked:
        if event.status == EventStatus.CONSUMED:
            logger.info("Event %s was already consumed; redelivery ignored.", event.pk)
        else:
            events[event.pk] = event
    enabled = enabled_consumers()
    wanted = {
        event.pk: {name: consumer for name, consumer in enabled.items() if event.event_type in consumer.event_types}
        for event in events.values()
    }
    Delivery.objects.bulk_create(
        [Delivery(event_id=event_id, consumer=name) for event_id, names in wanted.items() for name in names],
        ignore_conflicts=True,
    )
    pending = (
        Delivery.objects.filter(event_id__in=list(events), consumer__in=list(enabled), status=DeliveryStatus.PENDING)
        .order_by("pk")
        .values_list("pk", "event_id", "consumer", "claimed_at")
    )
    batch = _Batch(handled=list(events))
    delivered: list[int] = []
    batched: dict[str, list[tuple[int, RecommendationEvent]]] = {}  # consumer: its deliveries, for handle_batch
    for pk, event_id, name, claimed_at in pending:
        consumer = wanted[event_id].get(name)
        if consumer is None:  # enabled, but not for this event's type
            continue
        if not consumer.at_most_once and hasattr(consumer, "handle_batch"):
            batched.setdefault(name, []).append((pk, events[event_id]))
        elif not consumer.at_most_once:
            try:
                with transaction.atomic():  # a savepoint: a failing consumer leaves no half-done write behind
                    consumer.handle(events[event_id])
            except Exception as exc:  # noqa: BLE001 - recorded on its delivery after the commit, and retried
                batch.failed.append((pk, exc))
            else:
                delivered.append(pk)
        elif claimed_at is None:
            batch.claimed.append((pk, consumer, events[event_id]))
        else:  # claimed by a handling that never confirmed it: it may have acted, so it does not act again
            error = OUTCOME_UNKNOWN.format(consumer=name, claimed_at=claimed_at)
            logger.error("Delivery %s: %s", pk, error)
            fail_delivery(delivery_id=pk, error=error)
    for name, deliveries in batched.items():
        try:
            with transaction.atomic():  # a savepoint: all of its deliveries or none
                enabled[name].handle_batch([event for _pk, event in deliveries])
        except Exception as exc:  # noqa: BLE001 - each is recorded, and retried on its own with `handle`
            batch.failed += [(pk, exc) for pk, _event in deliveries]
        else:
            delivered += [pk for pk, _event in deliveries]
    now = timezone.now()
    if delivered:
        Delivery.objects.filter(pk__in=delivered).update(
            status=DeliveryStatus.DELIVERED, delivered_at=now, attempts=F("attempts") + 1, last_error=""
        )
    if batch.claimed:  # committed before they act: at most once
        Delivery.objects.filter(pk__in=[pk for pk, _consumer, _event in batch.claimed]).update(claimed_at=now)
    # Events with a claim are settled once it acted; the others now: consumed (or failed, or still pending).
    claimed_events = {event.pk for _pk, _consumer, event in batch.claimed}
    settle_events(event_ids=[event_id for event_id in events if event_id not in claimed_events])
    return batch


def record_event_failure(*, event_id: int, error: str, final: bool) -> None:
    """Keep the fan-out's error on the event; after the last retry the event is `failed` (see requeue)."""
    changes: dict[str, Any] = {"attempts": F("attempts") + 1, "last_error": error[:2000]}
    if final:
        changes["status"] = EventStatus.FAILED
    RecommendationEvent.objects.filter(pk=event_id).exclude(status=EventStatus.CONSUMED).update(**changes)
