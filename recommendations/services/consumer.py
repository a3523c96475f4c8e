"""The event consumer: what the worker does with an event: fan it out, one delivery per enabled consumer.

`handle_recommendation_event` (the event task) writes the event's missing delivery rows and runs every pending
one, each in its own transaction; a failed one goes to a task of its own (`deliver_event`) that retries it
alone with backoff, until it is delivered or `failed`; and the event is
`consumed` once all its deliveries are delivered. It is driven by the event row alone (no signal), so events
written by bulk inserts fan out alike; a re-published event only re-sends its deliveries still pending.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import F

from recommendations.consumers import enabled_consumers
from recommendations.consumers.analytics import count_recommendation
from recommendations.consumers.email import notify_care_team
from recommendations.models import Delivery, DeliveryStatus, EventStatus, RecommendationEvent
from recommendations.services.deliveries import attempt_delivery, settle_event

logger = logging.getLogger(__name__)

__all__ = ["count_recommendation", "fan_out_event", "handle_recommendation_event", "notify_care_team"]


def handle_recommendation_event(*, event_id: int) -> bool:
    """Fan one event out to its consumers; returns False if there was nothing to do (consumed, or gone).

    Idempotent: a redelivered message finds the deliveries written and sends only those still pending.
    """
    from recommendations import tasks

    pending = fan_out_event(event_id=event_id)
    if pending is None:
        return False
    # Each delivery runs once here, in a transaction of its own (one message per event, not one per consumer);
    # a failed one is handed to a task of its own, which retries it alone with backoff.
    for delivery_id in pending:
        retry_in = attempt_delivery(delivery_id=delivery_id, settle=False)
        if retry_in is not None:
            tasks.deliver_event_task.apply_async(args=[delivery_id], countdown=retry_in)
    with transaction.atomic():
        settle_event(event_id=event_id)  # once for all its deliveries
    return True


@transaction.atomic
def fan_out_event(*, event_id: int) -> list[int] | None:
    """Write the delivery rows the event lacks (one per enabled consumer of its type); return the pending ones.

    None when the event is gone or already consumed.
    """
    event = RecommendationEvent.objects.select_for_update().filter(pk=event_id).first()
    if event is None:
        logger.warning("Event %s does not exist; message dropped.", event_id)
        return None
    if event.status == EventStatus.CONSUMED:
        logger.info("Event %s was already consumed; redelivery ignored.", event_id)
        return None
    names = [name for name, consumer in enabled_consumers().items() if event.event_type in consumer.event_types]
    Delivery.objects.bulk_create([Delivery(event=event, consumer=name) for name in names], ignore_conflicts=True)
    pending = list(
        Delivery.objects.filter(event=event, consumer__in=names, status=DeliveryStatus.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not pending:
        settle_event(event_id=event.pk)
    return pending


def record_event_failure(*, event_id: int, error: str, final: bool) -> None:
    """Keep the fan-out's error on the event; after the last retry the event is `failed` (see requeue)."""
    changes: dict[str, Any] = {"attempts": F("attempts") + 1, "last_error": error[:2000]}
    if final:
        changes["status"] = EventStatus.FAILED
    RecommendationEvent.objects.filter(pk=event_id).exclude(status=EventStatus.CONSUMED).update(**changes)
