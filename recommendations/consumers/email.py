"""The e-mail consumer: tells the care team (and the patient, blind-copied) about a new recommendation.

At most once per event and recipient: it runs claimed (see the package docstring), and the `Notification` it
records is one per event.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage

from patients.models import Patient
from recommendations.consumers import NothingDone
from recommendations.models import Notification, RecommendationEvent


class EmailConsumer:
    """E-mails the care team about each new recommendation."""

    name = "email"
    event_types = frozenset({RecommendationEvent.TYPE_CREATED})
    at_most_once = True

    def handle(self, event: RecommendationEvent) -> None:
        notify_care_team(event=event)


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
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to=care_team, bcc=blind_copies)
    try:
        message.send(fail_silently=False)
    except Exception as exc:
        # The backend refused or could not connect: nothing went out, the delivery may try again.
        raise NothingDone(f"e-mail not sent: {exc!r}") from exc
    return Notification.objects.create(event=event, recipients=care_team + blind_copies, subject=subject, body=body)
