"""The event outbox and its consumer, with Celery eager as in the embedded default.

An evaluation writes each new recommendation and its event in one transaction; only after the commit is the
event published, and in eager mode the consumer then runs in the same process: it logs one structured line,
e-mails the care team, records the notification and counts the recommendation, once per event however often
the event arrives. A broker failure leaves the event `pending` for the relay; a consumer failure is retried,
then the event is `failed` until an operator requeues it.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from io import StringIO
from smtplib import SMTPException

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from clinrec.celery import app
from patients.tests.factories import PatientFactory
from recommendations.consumers import email as consumer
from recommendations.models import (
    Notification,
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
)
from recommendations.services import (
    evaluate_patient,
    evaluation,
    handle_recommendation_event,
    publish_pending_events,
)
from recommendations.tasks import Publication, handle_recommendation_event_task

pytestmark = pytest.mark.django_db


def evaluate_url(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/evaluate/"


def obese_patient(**overrides):
    """A patient for whom only the weight management rule fires."""
    return PatientFactory(bmi=34.0, **overrides)


def older_obese_patient(**overrides):
    """A patient for whom physical therapy and weight management fire."""
    return PatientFactory(
        birth_date=date(timezone.localdate().year - 80, 1, 1), chronic_pain=True, bmi=34.0, **overrides
    )


def unpublished_event(patient) -> RecommendationEvent:
    """Evaluate `patient` (one new recommendation) and return its event, leaving the after-commit publish undone."""
    (outcome,) = evaluate_patient(patient_id=patient.pk).recommendations
    return RecommendationEvent.objects.get(pk=outcome.event)


def statuses(patient) -> list[str]:
    return sorted(RecommendationEvent.objects.filter(patient_id=patient.pk).values_list("status", flat=True))


def count_of(recommendation_id: str) -> int:
    return sum(
        RecommendationDailyCount.objects.filter(recommendation_id=recommendation_id).values_list("count", flat=True)
    )


@pytest.fixture
def broker_down(monkeypatch):
    """Publishing fails the way kombu fails when RabbitMQ is unreachable; the list records each attempt."""
    attempts: list[int] = []

    def unreachable(event_ids: list[int]) -> Publication:
        attempts.append(event_ids[0])
        error = f"publish failed: {OperationalError('[Errno 111] Connection refused')!r}"
        return Publication(unconfirmed=event_ids[:1], error=error)

    monkeypatch.setattr("recommendations.tasks.publish_events", unreachable)
    return attempts


@pytest.fixture
def mail_server_down(monkeypatch):
    """Every e-mail the consumer sends fails; the returned list records each attempt."""
    attempts: list[str] = []

    def failing_send(message, *args, **kwargs):
        attempts.append(message.subject)
        raise SMTPException("421 service not available")

    monkeypatch.setattr(consumer.EmailMessage, "send", failing_send)
    return attempts


# --- the outbox: written with the link, published after the commit ------------------------------------------------


def test_evaluation_writes_links_and_pending_events_but_publishes_only_after_commit(
    clinician_client, django_capture_on_commit_callbacks
):
    patient = older_obese_patient()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    assert PatientRecommendation.objects.filter(patient=patient).count() == 2
    assert statuses(patient) == ["pending", "pending"]
    assert mail.outbox == []
    assert not Notification.objects.exists()

    for callback in callbacks:  # the commit
        callback()

    assert statuses(patient) == ["consumed", "consumed"]
    assert len(mail.outbox) == 2


def test_evaluation_over_the_api_publishes_and_consumes_its_events(
    clinician_client, django_capture_on_commit_callbacks
):
    patient = older_obese_patient()

    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    events = RecommendationEvent.objects.filter(patient_id=patient.pk)
    assert {(event.status, event.attempts) for event in events} == {("consumed", 1)}
    # Published, then consumed: even when the consumer runs inside the publishing call (eager mode).
    assert all(event.created_at <= event.published_at <= event.consumed_at for event in events)
    assert {event.pk for event in events} == {item["event"] for item in response.json()["recommendations"]}


def test_failure_midway_through_evaluation_leaves_no_link_and_no_event(monkeypatch, django_capture_on_commit_callbacks):
    patient = older_obese_patient()
    announce = evaluation.announce_recommendation
    calls = []

    def announce_then_fail(**kwargs):
        calls.append(kwargs["link"].recommendation_id)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return announce(**kwargs)

    monkeypatch.setattr(evaluation, "announce_recommendation", announce_then_fail)

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        evaluate_patient(patient_id=patient.pk)

    assert len(calls) == 2
    assert not PatientRecommendation.objects.filter(patient=patient).exists()
    assert not RecommendationEvent.objects.filter(patient_id=patient.pk).exists()
    assert callbacks == []
    assert mail.outbox == []


def test_evaluation_in_a_rolled_back_transaction_publishes_nothing(django_capture_on_commit_callbacks):
    patient = obese_patient()

    class Abandon(Exception):
        pass

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Abandon), transaction.atomic():
        assert len(evaluate_patient(patient_id=patient.pk).recommendations) == 1
        raise Abandon

    assert not PatientRecommendation.objects.filter(patient=patient).exists()
    assert not RecommendationEvent.objects.exists()
    assert callbacks == []
    assert mail.outbox == []


# --- the consumer ------------------------------------------------------------------------------------------------


def test_consumer_logs_one_structured_line_with_patient_recommendation_and_reason(caplog):
    event = unpublished_event(obese_patient(id="p-log"))

    with caplog.at_level(logging.INFO, logger="clinrec.events"):
        assert handle_recommendation_event(event_id=event.pk) is True

    (record,) = [record for record in caplog.records if record.name == "clinrec.events"]
    line = json.loads(record.getMessage())
    assert line["patient"] == "p-log"
    assert line["recommendation"] == "weight-management"
    assert line["reason"].startswith("BMI 34")
    assert line["event_id"] == event.pk


def test_consumer_emails_the_care_team_and_blind_copies_the_patient(settings):
    settings.CARE_TEAM_EMAIL = ["ward-7@hospital.example", "physio@hospital.example"]
    event = unpublished_event(obese_patient(id="p-mail", name="Elena Rossi", email="elena@example.org"))

    handle_recommendation_event(event_id=event.pk)

    (message,) = mail.outbox
    assert set(message.to) == {"ward-7@hospital.example", "physio@hospital.example"}
    assert message.bcc == ["elena@example.org"]
    assert "Weight Management Program" in message.subject
    assert "p-mail" in message.subject
    assert "Elena Rossi" in message.body
    assert "BMI 34" in message.body


def test_consumer_emails_only_the_care_team_when_the_patient_has_no_email():
    event = unpublished_event(obese_patient(email=""))

    handle_recommendation_event(event_id=event.pk)

    (message,) = mail.outbox
    assert message.to == list(settings.CARE_TEAM_EMAIL)


def test_consumer_records_the_notification_it_sent():
    event = unpublished_event(obese_patient(email="pat@example.org"))

    handle_recommendation_event(event_id=event.pk)

    notification = Notification.objects.get(event=event)
    assert notification.channel == "email"
    assert notification.recipients == [*settings.CARE_TEAM_EMAIL, "pat@example.org"]
    assert notification.subject == mail.outbox[0].subject


def test_consumer_counts_the_recommendation_for_the_day_and_marks_the_event_consumed():
    first = unpublished_event(obese_patient())
    second = unpublished_event(obese_patient())

    handle_recommendation_event(event_id=first.pk)
    handle_recommendation_event(event_id=second.pk)

    row = RecommendationDailyCount.objects.get(recommendation_id="weight-management")
    assert (row.day, row.count, row.name) == (timezone.localdate(), 2, "Weight Management Program")
    first.refresh_from_db()
    assert first.status == "consumed"
    assert first.consumed_at is not None


def test_same_event_handled_twice_sends_one_email_counts_once_and_notifies_once():
    event = unpublished_event(obese_patient())

    assert handle_recommendation_event(event_id=event.pk) is True
    assert handle_recommendation_event(event_id=event.pk) is False
    handle_recommendation_event_task.apply(args=[event.pk])

    assert len(mail.outbox) == 1
    assert count_of("weight-management") == 1
    assert Notification.objects.filter(event=event).count() == 1


def test_event_of_a_deleted_recommendation_is_dropped_without_error():
    assert handle_recommendation_event(event_id=987654) is False
    assert mail.outbox == []


# --- broker down: the evaluation succeeds and the event waits --------------------------------------------------


def test_evaluation_succeeds_with_the_broker_down_and_the_event_stays_pending(
    clinician_client, broker_down, django_capture_on_commit_callbacks
):
    patient = obese_patient()

    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    (item,) = response.json()["recommendations"]
    event = RecommendationEvent.objects.get(pk=item["event"])
    assert (event.status, event.attempts) == ("pending", 1)
    assert "Connection refused" in event.last_error
    assert event.published_at is None
    assert mail.outbox == []


def test_broker_down_an_evaluation_tries_the_broker_once_not_once_per_recommendation(
    clinician_client, broker_down, django_capture_on_commit_callbacks
):
    # Each attempt against a broker that does not answer costs the connection timeout, inside the request.
    patient = older_obese_patient()

    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    assert len(broker_down) == 1
    assert statuses(patient) == ["pending", "pending"]


def test_pending_event_is_published_and_consumed_once_the_broker_is_back(
    clinician_client, monkeypatch, broker_down, django_capture_on_commit_callbacks
):
    patient = older_obese_patient()
    with django_capture_on_commit_callbacks(execute=True):
        clinician_client.post(evaluate_url(patient.pk))
    assert statuses(patient) == ["pending", "pending"]

    monkeypatch.undo()  # the broker is back
    sent = publish_pending_events()

    assert sent == 2
    assert statuses(patient) == ["consumed", "consumed"]
    assert len(mail.outbox) == 2
    assert publish_pending_events() == 0


def test_relay_task_publishes_what_the_outbox_still_holds(broker_down, monkeypatch):
    event = unpublished_event(obese_patient())
    assert publish_pending_events() == 0

    monkeypatch.undo()
    app.tasks["recommendations.publish_pending_events"].apply()

    event.refresh_from_db()
    assert (event.status, event.attempts) == ("consumed", 2)
    assert len(mail.outbox) == 1


def test_publish_pending_events_command_reports_events_still_pending(broker_down):
    unpublished_event(obese_patient())
    out, err = StringIO(), StringIO()

    call_command("publish_pending_events", stdout=out, stderr=err)

    assert "Published 0 events; 1 still pending." in out.getvalue()
    assert "still pending" in err.getvalue()


# --- consumer failures: retried, then failed, then requeued by an operator ---------------------------------------


def test_consumer_failure_is_retried_then_the_event_is_marked_failed(settings, mail_server_down):
    settings.EVENT_HANDLER_MAX_RETRIES = 3
    event = unpublished_event(obese_patient())

    # Celery's eager apply() runs every retry at once, in this call, without waiting for the countdown.
    handle_recommendation_event_task.apply(args=[event.pk])

    assert len(mail_server_down) == 1 + 3  # the first attempt and three retries
    event.refresh_from_db()
    assert event.status == "failed"
    assert "421 service not available" in event.last_error
    email = event.deliveries.get(consumer="email")
    assert (email.status, email.attempts) == ("failed", 4)
    assert not Notification.objects.filter(event=event).exists()
    # The other consumers are independent of the e-mail: counted once, logged once.
    assert count_of("weight-management") == 1
    assert set(event.deliveries.values_list("consumer", "status")) == {
        ("log", "delivered"),
        ("analytics", "delivered"),
        ("email", "failed"),
    }


def test_consumer_failure_that_clears_up_on_retry_consumes_the_event_once(monkeypatch):
    event = unpublished_event(obese_patient())
    send = consumer.EmailMessage.send
    failures = []

    def flaky_send(message, *args, **kwargs):
        if not failures:
            failures.append(1)
            raise SMTPException("421 try again later")
        return send(message, *args, **kwargs)

    monkeypatch.setattr(consumer.EmailMessage, "send", flaky_send)

    result = handle_recommendation_event_task.apply(args=[event.pk])

    assert result.get() is True
    event.refresh_from_db()
    assert (event.status, event.last_error) == ("consumed", "")
    assert event.deliveries.get(consumer="email").attempts == 2
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(event=event).count() == 1
    assert count_of("weight-management") == 1


def test_publish_pending_events_retry_failed_requeues_and_consumes_failed_events(
    settings, mail_server_down, monkeypatch
):
    settings.EVENT_HANDLER_MAX_RETRIES = 0
    event = unpublished_event(obese_patient())
    handle_recommendation_event_task.apply(args=[event.pk])
    event.refresh_from_db()
    assert event.status == "failed"

    call_command("publish_pending_events", stdout=StringIO())
    event.refresh_from_db()
    assert event.status == "failed"  # without --retry-failed a failed event is left for the operator

    monkeypatch.undo()  # the mail server is back
    out = StringIO()
    call_command("publish_pending_events", "--retry-failed", stdout=out)

    event.refresh_from_db()
    assert event.status == "consumed"
    assert len(mail.outbox) == 1
    assert "Requeued 1 failed events." in out.getvalue()
    assert "Published 1 events; 0 still pending." in out.getvalue()


# --- what support and analytics read over the API -----------------------------------------------------------------


def test_events_endpoint_lists_a_patients_events_with_status_and_attempts(
    viewer_client, broker_down, monkeypatch, django_capture_on_commit_callbacks
):
    patient = older_obese_patient()
    other = obese_patient()
    consumed = unpublished_event(other)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_patient(patient_id=patient.pk)
    monkeypatch.undo()
    handle_recommendation_event(event_id=consumed.pk)

    response = viewer_client.get("/api/v1/events/", {"patient": patient.pk})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    rows = {row["recommendation"]: row for row in body["results"]}
    # The first publish attempt failed; the evaluation's second event was not tried against a broker known down.
    assert {(row["patient"], name, row["status"], row["attempts"]) for name, row in rows.items()} == {
        (patient.pk, "physical-therapy", "pending", 1),
        (patient.pk, "weight-management", "pending", 0),
    }
    assert "Connection refused" in rows["physical-therapy"]["last_error"]
    other_rows = viewer_client.get("/api/v1/events/", {"patient": other.pk}).json()["results"]
    assert [(row["id"], row["status"]) for row in other_rows] == [(consumed.pk, "consumed")]


def test_events_endpoint_needs_a_token(anon_client):
    assert anon_client.get("/api/v1/events/").status_code == 401


def test_analytics_endpoint_gives_one_row_per_recommendation_and_day(viewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_patient(patient_id=older_obese_patient().pk)
        evaluate_patient(patient_id=obese_patient().pk)

    response = viewer_client.get("/api/v1/analytics/recommendations/")

    assert response.status_code == 200
    rows = response.json()["results"]
    today = timezone.localdate().isoformat()
    assert sorted(rows, key=lambda row: row["recommendation"]) == [
        {"recommendation": "physical-therapy", "name": "Physical Therapy", "day": today, "count": 1},
        {"recommendation": "weight-management", "name": "Weight Management Program", "day": today, "count": 2},
    ]


def test_analytics_endpoint_filters_by_recommendation(viewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_patient(patient_id=older_obese_patient().pk)

    rows = viewer_client.get("/api/v1/analytics/recommendations/", {"recommendation": "physical-therapy"}).json()

    assert [row["recommendation"] for row in rows["results"]] == ["physical-therapy"]


def test_analytics_names_a_renamed_definition_by_its_current_name(viewer_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_patient(patient_id=obese_patient().pk)
    Recommendation.objects.filter(pk="weight-management").update(name="Healthy Weight Clinic")

    (row,) = viewer_client.get("/api/v1/analytics/recommendations/").json()["results"]

    assert (row["recommendation"], row["name"], row["count"]) == ("weight-management", "Healthy Weight Clinic", 1)


# --- Celery's reliability settings took (a misspelt CELERY_ setting is silently ignored) --------------------------


def test_celery_reliability_settings_reach_the_app():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 4  # reserved messages stay unacked until handled (acks_late)
    assert app.conf.task_serializer == "json"
    assert app.conf.accept_content == ["json"]
    assert app.conf.task_default_queue == settings.CELERY_TASK_DEFAULT_QUEUE
    assert app.conf.beat_schedule["publish-pending-events"]["task"] == "recommendations.publish_pending_events"
    assert "recommendations.handle_recommendation_event" in app.tasks
    assert "recommendations.handle_recommendation_events" in app.tasks


def test_definition_names_are_copied_into_the_event_payload():
    event = unpublished_event(obese_patient(name="Noah Fischer"))

    assert event.payload["patient_name"] == "Noah Fischer"
    assert event.payload["recommendation_name"] == Recommendation.objects.get(pk="weight-management").name
    assert event.payload["rule"] == "weight_management"
