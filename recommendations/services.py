"""Writes with a business meaning: evaluating a patient, recording recommendations, and the event outbox.

The life of an event: `record_recommendation` writes the patient recommendation and its event (the outbox
row) in one transaction; after the commit `publish_pending_events` sends it to the broker and marks it
`published`; the worker runs `handle_recommendation_event`, which logs, notifies, counts and marks it
`consumed` in one transaction, and does nothing for an event it already consumed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.module_loading import import_string

from patients.models import Patient
from recommendations.definitions import STANDARD_BY_RULE
from recommendations.engine import Engine, EngineConfig, Finding
from recommendations.models import (
    EventStatus,
    Notification,
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
    RecommendationSource,
    RecommendationStatus,
)
from recommendations.selectors import patient_snapshot

logger = logging.getLogger(__name__)
event_log = logging.getLogger("clinrec.events")

NOTHING_TO_RECOMMEND = "Nothing to recommend"


# --- Evaluation --------------------------------------------------------------------------------------------


def get_engine() -> Engine:
    """The engine named by `RECOMMENDATION_ENGINE`, configured from the threshold settings."""
    engine_class = import_string(settings.RECOMMENDATION_ENGINE)
    config = EngineConfig.from_values(
        physical_therapy_min_age=settings.PHYSICAL_THERAPY_MIN_AGE,
        weight_management_min_bmi=settings.WEIGHT_MANAGEMENT_MIN_BMI,
        rehab_departments=settings.ADMISSIBLE_DEPARTMENTS_FOR_REHAB,
        rehab_window_days=settings.REHAB_WINDOW_DAYS,
    )
    return engine_class(config)


@dataclass(frozen=True)
class EvaluatedRecommendation:
    """One finding of an evaluation and what ClinRec recorded for it."""

    recommendation: str
    name: str
    rule: str
    reason: str
    patient_recommendation: int
    new: bool
    event: int | None


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one patient at one instant."""

    patient: str
    evaluated_at: datetime
    recommendations: list[EvaluatedRecommendation] = field(default_factory=list)

    @property
    def message(self) -> str | None:
        return None if self.recommendations else NOTHING_TO_RECOMMEND


def definitions_for_rules(rules: set[str]) -> dict[str, Recommendation]:
    """The definition of each rule that has one.

    A standard rule without a definition gets its standard one, so a fresh database can evaluate at once;
    but if an administrator detached the rule from that definition (its id is taken, its `rule` cleared), or
    the engine names a rule no definition carries, the rule is switched off rather than guessed at.
    """
    found = {definition.rule: definition for definition in Recommendation.objects.filter(rule__in=rules)}
    for rule in rules - found.keys():
        standard = STANDARD_BY_RULE.get(rule)
        if standard is None or Recommendation.objects.filter(pk=standard.id).exists():
            logger.warning("No recommendation definition carries rule %r: its findings are not recorded.", rule)
            continue
        found[rule], _ = Recommendation.objects.get_or_create(
            rule=rule, defaults={"id": standard.id, "name": standard.name, "description": standard.description}
        )
    return found


@transaction.atomic
def evaluate_patient(*, patient_id: str, at: datetime | None = None) -> Evaluation:
    """Run the engine on the patient's current data and record each new recommendation with its event.

    The patient row is locked for the evaluation, so concurrent evaluations of one patient queue up and
    never duplicate a recommendation (a partial unique constraint backs this where locks are not available).
    Raises `Patient.DoesNotExist` for an unknown patient.
    """
    at = at or timezone.now()
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    findings = get_engine().evaluate(patient_snapshot(patient=patient), at=at)
    if not findings:
        return Evaluation(patient=patient.pk, evaluated_at=at)

    definitions = definitions_for_rules({finding.rule for finding in findings})
    active = {
        link.recommendation_id: link
        for link in PatientRecommendation.objects.filter(
            patient=patient,
            status=RecommendationStatus.ACTIVE,
            recommendation__in=[definition.pk for definition in definitions.values()],
        )
    }
    outcomes = []
    new_event_ids = []
    for finding in findings:
        definition = definitions.get(finding.rule)
        if definition is None:
            continue
        existing = active.get(definition.pk)
        if existing is not None:
            outcomes.append(_outcome(finding, definition, existing, event=None))
            continue
        link, event = record_recommendation(
            patient=patient,
            recommendation=definition,
            source=RecommendationSource.RULE,
            reason=finding.reason,
            at=at,
            publish=False,
        )
        new_event_ids.append(event.pk)
        outcomes.append(_outcome(finding, definition, link, event=event))
    if new_event_ids:
        # One publish for the whole evaluation: with the broker down it gives up after the first failed
        # attempt (one connection timeout in the request), instead of one attempt per recommendation.
        transaction.on_commit(partial(publish_pending_events, event_ids=new_event_ids))
    return Evaluation(patient=patient.pk, evaluated_at=at, recommendations=outcomes)


def _outcome(
    finding: Finding, definition: Recommendation, link: PatientRecommendation, *, event: RecommendationEvent | None
) -> EvaluatedRecommendation:
    return EvaluatedRecommendation(
        recommendation=definition.pk,
        name=definition.name,
        rule=finding.rule,
        reason=finding.reason,
        patient_recommendation=link.pk,
        new=event is not None,
        event=event.pk if event is not None else None,
    )


# --- Recording recommendations and their events (the outbox) ------------------------------------------------


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


# --- The consumer ------------------------------------------------------------------------------------------


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
