"""The event consumer: what the worker does with a recommendation event (log it, notify, count it)."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from patients.models import Patient
from recommendations.models import EventStatus, Notification, RecommendationDailyCount, RecommendationEvent

logger = logging.getLogger(__name__)
event_log = logging.getLogger("clinrec.events")


@transaction.atomic
def handle_recommendation_event(*, event_id: int) -> bool:
    """Consume one event: log it, notify the care team, count it; returns False if there was nothing to do.

    Idempotent: the event row is locked and an event already `consumed` is skipped, so a redelivered message
    sends no second e-mail and is counted once.
    """
    event = RecommendationEvent.objects.select_for_update().filter(pk=event_id).first()
    if event is None:
        logger.warning("Event %s does not exist; message dropped.", event_id)
        return False
    if event.status == EventStatus.CONSUMED:
        logger.info("Event %s was already consumed; redelivery ignored.", event_id)
        return False
    event_log.info(
        json.dumps(
            {
                "event": event.event_type,
                "event_id": event.pk,
                "patient": event.patient_id,
                "recommendation": event.recommendation_id,
                "reason": event.payload.get("reason", ""),
            },
            sort_keys=True,
        )
    )
    notify_care_team(event=event)
    count_recommendation(event=event)
    event.status = EventStatus.CONSUMED
    event.consumed_at = timezone.now()
    event.last_error = ""
    event.save(update_fields=["status", "consumed_at", "last_error"])
    return True


def notify_care_team(*, event: RecommendationEvent) -> Notification:
    """E-mail the care team (and the patient's address, if any) about a new recommendation, and record it."""
    existing = Notification.objects.filter(event=event).first()
    if existing is not None:
        return existing
    payload = event.payload
    care_team = list(settings.CARE_TEAM_EMAIL)
    patient_email = Patient.objects.filter(pk=event.patient_id).values_list("email", flat=True).first()
    # The patient gets a blind copy: neither side sees the other's address.
    blind_copies = [patient_email] if patient_email else []
    programme = payload.get("recommendation_name", event.recommendation_id)
    subject = f"ClinRec: {programme} recommended for patient {event.patient_id}"
    body = (
        f"Patient: {payload.get('patient_name', '')} ({event.patient_id})\n"
        f"Recommendation: {payload.get('recommendation_name', '')} ({event.recommendation_id})\n"
        f"Reason: {payload.get('reason', '')}\n"
        f"Recommended at: {payload.get('recommended_at', '')}\n"
    )
    notification = Notification.objects.create(
        event=event, recipients=care_team + blind_copies, subject=subject, body=body
    )
    EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to=care_team, bcc=blind_copies).send(fail_silently=False)
    return notification


def count_recommendation(*, event: RecommendationEvent) -> None:
    """Add one to the analytics row of the event's recommendation and day (created when missing)."""
    day = timezone.localdate(event.created_at)
    row = RecommendationDailyCount.objects.filter(recommendation_id=event.recommendation_id, day=day)
    if row.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            RecommendationDailyCount.objects.create(
                recommendation_id=event.recommendation_id,
                name=event.payload.get("recommendation_name", event.recommendation_id),
                day=day,
                count=1,
            )
    except IntegrityError:  # another worker created the row first
        row.update(count=F("count") + 1)


def record_event_failure(*, event_id: int, error: str, final: bool) -> None:
    """Keep the handler's error on the event; after the last retry the event is `failed` (see requeue)."""
    changes: dict[str, Any] = {"attempts": F("attempts") + 1, "last_error": error[:2000]}
    if final:
        changes["status"] = EventStatus.FAILED
    RecommendationEvent.objects.filter(pk=event_id).exclude(status=EventStatus.CONSUMED).update(**changes)
