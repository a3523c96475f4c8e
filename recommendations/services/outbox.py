"""The transactional outbox: a recommendation and its event are written together, then published to the broker."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from patients.models import Patient
from recommendations.models import (
    Delivery,
    DeliveryStatus,
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


def announce_status_change(*, link: PatientRecommendation, previous: str, publish: bool = True) -> RecommendationEvent:
    """Write the outbox event of a recommendation whose status changed (in its transaction); publish on commit.

    Order systems cancel (dismissed) or complete (completed) their order on it; e-mail and analytics ignore it.
    """
    event = RecommendationEvent.objects.create(
        event_type=RecommendationEvent.TYPE_STATUS_CHANGED,
        patient_id=link.patient_id,
        recommendation_id=link.recommendation_id,
        patient_recommendation=link,
        payload={**_event_payload(link), "status": link.status, "previous_status": previous},
    )
    if publish:
        transaction.on_commit(partial(publish_pending_events, event_ids=[event.pk]))
    return event


def change_recommendation_status(*, link: PatientRecommendation, previous: str) -> RecommendationEvent | None:
    """Announce a saved status change of a patient recommendation (API or admin); None if it did not change."""
    if link.status == previous:
        return None
    return announce_status_change(link=link, previous=previous)


def _event_payload(link: PatientRecommendation) -> dict[str, Any]:
    return event_payload(
        patient_id=link.patient_id,
        patient_name=link.patient.name,
        definition=link.recommendation,
        source=link.source,
        reason=link.reason,
        link_id=link.pk,
        recommended_at=link.recommended_at.isoformat(),
        provenance=link.provenance,
    )


def event_payload(
    *,
    patient_id: str,
    patient_name: str,
    definition: Recommendation,
    source: str,
    reason: str,
    link_id: int,
    recommended_at: str,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """The payload announcing a patient recommendation, from plain values: set-wise evaluation builds tens of
    thousands without a model instance each (`recommended_at` already in ISO form, computed once per run)."""
    return {
        "patient": patient_id,
        "patient_name": patient_name,
        "recommendation": definition.pk,
        "recommendation_name": definition.name,
        "rule": definition.rule,
        "source": source,
        "reason": reason,
        "patient_recommendation": link_id,
        "recommended_at": recommended_at,
        "provenance": provenance,
    }


@dataclass
class RelayReport:
    """What one run of the relay did so far: events published (re-publishes included), failed, still due."""

    published: int = 0
    republished: int = 0
    failed: int = 0
    batches: int = 0
    broker_error: str = ""


def publish_pending_events(
    *,
    event_ids: list[int] | None = None,
    batch_size: int | None = None,
    time_budget: float | None = None,
    report: RelayReport | None = None,
    on_batch: Callable[[RelayReport], None] | None = None,
) -> int:
    """Publish what the outbox owes the broker, batch after batch; returns how many events the broker confirmed.

    Due are the `pending` events and the `published` ones not consumed within OUTBOX_REPUBLISH_AFTER_SECONDS
    (their message was lost, or sits on a queue nobody reads); an event re-published OUTBOX_MAX_REPUBLISHES
    times and still not consumed is marked `failed` instead, for an operator to look at and requeue. With
    `event_ids` (the after-commit publish of one evaluation) only those pending events are due.

    Batches of `batch_size` (OUTBOX_RELAY_BATCH_SIZE) are claimed with `SELECT ... FOR UPDATE SKIP LOCKED`, so
    concurrent relays and after-commit publishers never send one event at once; runs stop when nothing is due,
    when the broker fails (the rest would fail alike), or once `time_budget` seconds are spent (None: no
    limit), so that beat's next tick finds the relay done. An event counts as `published` only once the broker
    confirmed it; a failed or unconfirmed publish leaves it as it was, with the attempt counted and the error
    kept. Never raises for a broker failure: the evaluation that triggered it has already succeeded.

    `report`, if given, is filled in as the run goes; `on_batch` is called with it after each batch.
    """
    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    started = time.monotonic()
    report = report if report is not None else RelayReport()
    while True:
        claimed = _publish_one_batch(event_ids=event_ids, batch_size=batch_size, report=report)
        report.batches += 1
        if on_batch is not None:
            on_batch(report)
        if report.broker_error or claimed < batch_size:
            break
        if time_budget is not None and time.monotonic() - started >= time_budget:
            break
    return report.published


@transaction.atomic
def _publish_one_batch(*, event_ids: list[int] | None, batch_size: int, report: RelayReport) -> int:
    """Claim up to `batch_size` due events, publish them one confirmed message each; returns how many were claimed."""
    from recommendations import tasks

    due = Q(status=EventStatus.PENDING)
    if event_ids is not None:
        due &= Q(pk__in=event_ids)
    else:
        unconsumed_since = timezone.now() - timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS)
        due |= Q(status=EventStatus.PUBLISHED, published_at__lt=unconsumed_since)
    claimed = list(
        RecommendationEvent.objects.filter(due)
        .select_for_update(skip_locked=True)
        .order_by("pk")
        .only("pk", "status", "publish_count")[:batch_size]
    )
    due_again = [event for event in claimed if event.status == EventStatus.PUBLISHED]
    given_up = [event.pk for event in due_again if event.publish_count > settings.OUTBOX_MAX_REPUBLISHES]
    to_send = [event.pk for event in claimed if event.pk not in given_up]
    sent_at = timezone.now()  # before sending: an eager consumer finishes inside the call
    publication = tasks.publish_events(to_send)
    if publication.confirmed:
        RecommendationEvent.objects.filter(pk__in=publication.confirmed).update(
            # The consumer may already have marked it consumed (eager mode): never move its status backwards.
            status=Case(When(status=EventStatus.PENDING, then=Value(EventStatus.PUBLISHED)), default=F("status")),
            published_at=sent_at,
            attempts=F("attempts") + 1,
            publish_count=F("publish_count") + 1,
        )
        report.published += len(publication.confirmed)
        report.republished += len({event.pk for event in due_again} & set(publication.confirmed))
    if publication.error:
        logger.warning(
            "Could not publish events %s, they wait for the relay: %s", publication.unconfirmed, publication.error
        )
        report.broker_error = publication.error
        RecommendationEvent.objects.filter(pk__in=publication.unconfirmed).update(
            attempts=F("attempts") + 1, last_error=publication.error
        )
    if given_up:
        report.failed += RecommendationEvent.objects.filter(pk__in=given_up).update(
            status=EventStatus.FAILED,
            last_error=(
                f"Re-published {settings.OUTBOX_MAX_REPUBLISHES} times, confirmed by the broker each time, and never "
                f"consumed within {settings.OUTBOX_REPUBLISH_AFTER_SECONDS:g} s of a publish: is a worker consuming "
                f"queue {settings.CELERY_TASK_DEFAULT_QUEUE!r}? Requeue it with "
                "`manage.py publish_pending_events --retry-failed`."
            ),
        )
        logger.error("Events %s were published again and again but never consumed; marked failed.", given_up)
    return len(claimed)


def requeue_failed_events(*, event_ids: list[int] | None = None) -> int:
    """Put failed events back to `pending` so the relay publishes them again (an on-call operation).

    Their re-publish count starts again: each requeue gives an event the full OUTBOX_MAX_REPUBLISHES.
    """
    failed = RecommendationEvent.objects.filter(status=EventStatus.FAILED)
    if event_ids is not None:
        failed = failed.filter(pk__in=event_ids)
    # Their failed deliveries are tried again when the event comes back; delivered ones are not repeated.
    Delivery.objects.filter(event__in=failed, status=DeliveryStatus.FAILED).update(
        status=DeliveryStatus.PENDING, claimed_at=None, attempts=0
    )
    return failed.update(status=EventStatus.PENDING, publish_count=0)
