"""The transactional outbox: a recommendation and its event are written together, then published to the broker."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from patients.models import Patient
from recommendations.models import (
    EventStatus,
    PatientRecommendation,
    Recommendation,
    RecommendationEvent,
    RecommendationStatus,
)

logger = logging.getLogger(__name__)


@transaction.atomic
def record_recommendation(
    *,
    patient: Patient,
    recommendation: Recommendation,
    source: str,
    reason: str = "",
    at: datetime | None = None,
    status: str = RecommendationStatus.ACTIVE,
    publish: bool = True,
) -> tuple[PatientRecommendation, RecommendationEvent]:
    """Create a patient recommendation and its outbox event together; the event is published after commit.

    With `publish=False` the caller publishes it (after its own commit); the relay would send it anyway.
    """
    link = PatientRecommendation.objects.create(
        patient=patient,
        recommendation=recommendation,
        recommended_at=at or timezone.now(),
        source=source,
        reason=reason,
        status=status,
    )
    return link, announce_recommendation(link=link, publish=publish)


def announce_recommendation(*, link: PatientRecommendation, publish: bool = True) -> RecommendationEvent:
    """Write the outbox event of a patient recommendation just saved (in its transaction); publish on commit."""
    event = RecommendationEvent.objects.create(
        patient_id=link.patient_id,
        recommendation_id=link.recommendation_id,
        patient_recommendation=link,
        payload=_event_payload(link),
    )
    if publish:
        transaction.on_commit(partial(publish_pending_events, event_ids=[event.pk]))
    return event


def _event_payload(link: PatientRecommendation) -> dict[str, Any]:
    return {
        "patient": link.patient_id,
        "patient_name": link.patient.name,
        "recommendation": link.recommendation_id,
        "recommendation_name": link.recommendation.name,
        "rule": link.recommendation.rule,
        "source": link.source,
        "reason": link.reason,
        "patient_recommendation": link.pk,
        "recommended_at": link.recommended_at.isoformat(),
        "provenance": link.provenance,
    }


def publish_pending_events(*, event_ids: list[int] | None = None, batch_size: int = 100) -> int:
    """Send pending events to the broker and mark them `published`; returns how many were sent.

    Rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, so the after-commit publisher and the
    periodic relay never send the same event at once. If the broker is unreachable the event stays
    `pending` with its attempt counted and the error kept; the relay sends it once the broker is back.
    Never raises for a broker failure: the evaluation that triggered it has already succeeded.
    """
    from recommendations.tasks import send_event_to_consumer

    sent = 0
    with transaction.atomic():
        pending = RecommendationEvent.objects.filter(status=EventStatus.PENDING)
        if event_ids is not None:
            pending = pending.filter(pk__in=event_ids)
        claimed = list(pending.select_for_update(skip_locked=True).order_by("pk")[:batch_size])
        for event in claimed:
            sent_at = timezone.now()  # before sending: an eager consumer finishes inside the call
            try:
                send_event_to_consumer(event.pk)
            except Exception as exc:  # noqa: BLE001 - any broker failure leaves the event for the relay
                logger.warning("Could not publish event %s, it stays pending: %s", event.pk, exc)
                RecommendationEvent.objects.filter(pk=event.pk).update(
                    attempts=F("attempts") + 1, last_error=f"publish failed: {exc}"[:2000]
                )
                break  # the broker is down: the rest of the batch would fail the same way
            # The consumer may already have marked it consumed (eager mode): never move its status backwards.
            RecommendationEvent.objects.filter(pk=event.pk).update(
                status=Case(When(status=EventStatus.PENDING, then=Value(EventStatus.PUBLISHED)), default=F("status")),
                published_at=sent_at,
                attempts=F("attempts") + 1,
            )
            sent += 1
    return sent


def requeue_failed_events(*, event_ids: list[int] | None = None) -> int:
    """Put failed events back to `pending` so the relay publishes them again (an on-call operation)."""
    failed = RecommendationEvent.objects.filter(status=EventStatus.FAILED)
    if event_ids is not None:
        failed = failed.filter(pk__in=event_ids)
    return failed.update(status=EventStatus.PENDING)
