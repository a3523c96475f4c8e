"""Each consumer on its own: a delivery per (event, consumer), retried alone, never repeating another's effect;
the e-mail at most once per event and recipient, even when the worker dies between sending and recording."""

from __future__ import annotations

from io import StringIO
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from clinrec.models import CacheVersion
from patients.models import Patient
from patients.tests.factories import PatientFactory
from recommendations.consumers import email as email_consumer
from recommendations.models import (
    Delivery,
    Notification,
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
)
from recommendations.services import (
    evaluate_patient,
    handle_recommendation_event,
    handle_recommendation_events,
    record_recommendation,
)
from recommendations.tasks import (
    deliver_event_task,
    handle_recommendation_event_task,
    handle_recommendation_events_task,
)
from recommendations.tests.factories import PatientRecommendationFactory

pytestmark = pytest.mark.django_db

# The event's transaction (a savepoint in the test's): the event locked, its delivery rows written and read, the
# log and the count (the day's first: created) each in a savepoint, the two delivered and the e-mail claimed in
# two UPDATEs (15); the e-mail: its notification looked for, the patient's address, the record (3); the e-mail's
# delivery locked and marked, the event settled (7). No cache token is replaced.
QUERIES_PER_EVENT = 25


def unpublished_event() -> RecommendationEvent:
    (outcome,) = evaluate_patient(patient_id=PatientFactory(bmi=34.0).pk).recommendations
    return RecommendationEvent.objects.get(pk=outcome.event)


def count() -> int:
    return sum(RecommendationDailyCount.objects.values_list("count", flat=True))


@pytest.fixture
def worker_dies_after_sending(monkeypatch):
    """The e-mail goes out, then the database connection drops before the delivery is recorded (once)."""
    create = Notification.objects.create
    crashes = []

    def create_then_crash(**kwargs):
        if not crashes:
            crashes.append(1)
            raise OperationalError("server closed the connection unexpectedly")
        return create(**kwargs)

    monkeypatch.setattr(Notification.objects, "create", create_then_crash)
    return crashes


def test_one_delivery_per_enabled_consumer_each_delivered_once():
    event = unpublished_event()

    handle_recommendation_event_task.apply(args=[event.pk])

    assert sorted(event.deliveries.values_list("consumer", "status", "attempts")) == [
        ("analytics", "delivered", 1),
        ("email", "delivered", 1),
        ("log", "delivered", 1),
    ]
    event.refresh_from_db()
    assert event.status == "consumed"


def test_email_sent_but_not_recorded_is_never_sent_again_on_retry(worker_dies_after_sending):
    event = unpublished_event()

    handle_recommendation_event_task.apply(args=[event.pk])

    assert len(mail.outbox) == 1  # the retry found the claim: no second e-mail
    email = event.deliveries.get(consumer="email")
    assert email.status == "failed"
    assert email.last_error.startswith("Outcome unknown")
    assert count() == 1  # the other consumers happened once, on their own
    assert event.deliveries.get(consumer="log").status == "delivered"


def test_redelivered_message_after_a_crash_sends_no_second_email(worker_dies_after_sending, settings):
    settings.EVENT_HANDLER_MAX_RETRIES = 0
    event = unpublished_event()
    handle_recommendation_event_task.apply(args=[event.pk])

    # The broker redelivers the event's message (acks_late) and the delivery's own message: nothing is repeated.
    handle_recommendation_event(event_id=event.pk)
    deliver_event_task.apply(args=[event.deliveries.get(consumer="email").pk])

    assert len(mail.outbox) == 1
    assert count() == 1


def test_mail_server_refusing_is_retried_and_sends_exactly_one_email(monkeypatch):
    event = unpublished_event()
    send = email_consumer.EmailMessage.send
    refusals = []

    def refuse_twice(message, *args, **kwargs):
        if len(refusals) < 2:
            refusals.append(1)
            raise SMTPException("451 try again later")
        return send(message, *args, **kwargs)

    monkeypatch.setattr(email_consumer.EmailMessage, "send", refuse_twice)

    handle_recommendation_event_task.apply(args=[event.pk])

    assert len(mail.outbox) == 1
    assert event.deliveries.get(consumer="email").attempts == 3
    assert event.deliveries.get(consumer="analytics").attempts == 1  # not retried with the e-mail
    assert count() == 1


def test_requeue_deliveries_command_resends_only_failed_ones(settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.EVENT_HANDLER_MAX_RETRIES = 0

    def refuse(*args, **kwargs):
        raise SMTPException("421 service not available")

    monkeypatch.setattr(email_consumer.EmailMessage, "send", refuse)
    event = unpublished_event()
    handle_recommendation_event_task.apply(args=[event.pk])
    assert event.deliveries.get(consumer="email").status == "failed"
    monkeypatch.undo()

    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("requeue_deliveries", "--consumer", "email", stdout=out)

    assert "Requeued 1 failed deliveries." in out.getvalue()
    assert len(mail.outbox) == 1
    assert count() == 1
    event.refresh_from_db()
    assert event.status == "consumed"


def test_requeue_deliveries_refuses_an_unknown_consumer():
    with pytest.raises(CommandError, match="'fax' is not an enabled consumer"):
        call_command("requeue_deliveries", "--consumer", "fax")


def test_a_consumer_failing_halfway_leaves_no_half_write_and_the_others_stand(monkeypatch):
    event = unpublished_event()
    from recommendations.consumers import analytics

    count_once = analytics.count_recommendations
    failures = []

    def count_then_fail(*, events):
        count_once(events=events)  # written in the event's transaction, then undone with its savepoint
        if not failures:
            failures.append(1)
            raise OperationalError("deadlock detected")

    monkeypatch.setattr(analytics, "count_recommendations", count_then_fail)

    handle_recommendation_event_task.apply(args=[event.pk])

    assert count() == 1  # the failed attempt's count was rolled back, the retry counted once
    assert len(mail.outbox) == 1
    assert sorted(event.deliveries.values_list("consumer", "status", "attempts")) == [
        ("analytics", "delivered", 2),
        ("email", "delivered", 1),
        ("log", "delivered", 1),
    ]
    event.refresh_from_db()
    assert event.status == "consumed"


def test_handling_an_event_costs_a_fixed_number_of_queries(django_assert_num_queries):
    """One transaction for the event and its ordinary consumers, then the e-mail and its short record."""
    event = unpublished_event()

    with django_assert_num_queries(QUERIES_PER_EVENT):
        assert handle_recommendation_event(event_id=event.pk) is True

    assert Delivery.objects.filter(event=event, status="delivered").count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_handling_an_event_leaves_cached_patient_reads_cached(viewer_client):
    """Events, deliveries, notifications and counts are shown by no cached read: writing them replaces no token."""
    _link, event = record_recommendation(
        patient=PatientFactory(), recommendation=Recommendation.objects.first(), source="rule", publish=False
    )
    patient_url = f"/api/v1/patients/{event.patient_id}/"
    links_url = f"/api/v1/patient-recommendations/?patient={event.patient_id}"
    name = viewer_client.get(patient_url).json()["name"]
    links = viewer_client.get(links_url).json()
    Patient.objects.filter(pk=event.patient_id).update(name="Changed behind the API")  # no signal, no new token
    PatientRecommendation.objects.filter(patient_id=event.patient_id).update(reason="Changed behind the API")
    tokens = dict(CacheVersion.objects.values_list("label", "token"))

    assert handle_recommendation_event(event_id=event.pk) is True

    assert dict(CacheVersion.objects.values_list("label", "token")) == tokens
    assert viewer_client.get(patient_url).json()["name"] == name  # still served from the cache
    assert viewer_client.get(links_url).json() == links
    event.refresh_from_db()
    assert event.status == "consumed"


# --- batches: several events per message, one transaction, each event still handled once ----------------------


def unpublished_events(count: int) -> list[int]:
    return [unpublished_event().pk for _ in range(count)]


def test_a_batch_handles_each_of_its_events_once():
    event_ids = unpublished_events(3)

    result = handle_recommendation_events_task.apply(args=[event_ids]).get()

    assert result == [True, True, True]
    assert list(RecommendationEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True)) == 3 * [
        "consumed"
    ]
    assert Delivery.objects.filter(event_id__in=event_ids, status="delivered", attempts=1).count() == 9
    assert len(mail.outbox) == 3
    assert Notification.objects.count() == 3
    assert count() == 3


def test_a_redelivered_batch_repeats_nothing():
    event_ids = unpublished_events(2)
    handle_recommendation_events_task.apply(args=[event_ids])

    result = handle_recommendation_events_task.apply(args=[[*event_ids, 987654]]).get()  # and one gone since

    assert result == [False, False, False]
    assert len(mail.outbox) == 2
    assert count() == 2


def test_a_batch_costs_per_event_only_its_consumers_queries():
    """The batch's locks, delivery rows, log lines, counts (one UPDATE per definition and day), UPDATEs and
    settling cost the same whatever its size."""
    per_event = 3  # the e-mail's: its notification looked for, the patient's address, the record
    two, four = unpublished_events(2), unpublished_events(4)
    unpublished_event()  # the day's count rows exist for every definition from here on
    handle_recommendation_events(event_ids=[unpublished_event().pk])

    with CaptureQueriesContext(connection) as small:
        handle_recommendation_events(event_ids=two)
    with CaptureQueriesContext(connection) as large:
        handle_recommendation_events(event_ids=four)

    assert len(large) - len(small) == 2 * per_event


def test_a_batch_that_fails_as_a_whole_retries_each_event_on_its_own(monkeypatch):
    event_ids = unpublished_events(3)
    from recommendations import services

    handle = services.handle_recommendation_events

    def fail_a_batch(*, event_ids):
        if len(event_ids) > 1:
            raise OperationalError("could not serialize access")
        return handle(event_ids=event_ids)

    monkeypatch.setattr(services, "handle_recommendation_events", fail_a_batch)

    assert handle_recommendation_events_task.apply(args=[event_ids]).get() == [False, False, False]

    assert set(RecommendationEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True)) == {"consumed"}
    assert len(mail.outbox) == 3
    assert count() == 3


def test_events_created_by_bulk_insert_fan_out_like_any_other():
    template = unpublished_event()
    (bulk,) = RecommendationEvent.objects.bulk_create(
        [
            RecommendationEvent(
                patient_id=template.patient_id, recommendation_id=template.recommendation_id, payload=template.payload
            )
        ]
    )

    assert handle_recommendation_event(event_id=bulk.pk) is True

    assert Delivery.objects.filter(event_id=bulk.pk, status="delivered").count() == 3


def test_a_consumer_removed_from_settings_fails_its_pending_delivery_with_a_reason(settings):
    event = unpublished_event()
    settings.EVENT_CONSUMERS = ["recommendations.consumers.log.LogConsumer"]
    handle_recommendation_event(event_id=event.pk)
    Delivery.objects.create(event=event, consumer="email")  # written while the e-mail consumer was enabled

    deliver_event_task.apply(args=[Delivery.objects.get(event=event, consumer="email").pk])

    email = Delivery.objects.get(event=event, consumer="email")
    assert email.status == "failed"
    assert "not enabled" in email.last_error
    assert mail.outbox == []


# --- the admin: a status change is announced; failed deliveries are listed and requeued ---------------------------


def test_dismissing_in_the_admin_announces_the_status_change(
    client, admin_user_session, django_capture_on_commit_callbacks
):
    link = PatientRecommendationFactory(status="active")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/admin/recommendations/patientrecommendation/{link.pk}/change/",
            {
                "patient": link.patient_id,
                "recommendation": link.recommendation_id,
                "recommended_at_0": link.recommended_at.strftime("%Y-%m-%d"),
                "recommended_at_1": link.recommended_at.strftime("%H:%M:%S"),
                "source": link.source,
                "reason": link.reason,
                "status": "dismissed",
            },
        )

    assert response.status_code == 302, response.content
    (event,) = RecommendationEvent.objects.filter(event_type="recommendation.status_changed")
    assert (event.patient_recommendation_id, event.payload["status"]) == (link.pk, "dismissed")
    assert event.deliveries.get().consumer == "log"  # e-mail and analytics ignore status changes
    assert mail.outbox == []


def test_admin_lists_deliveries_by_consumer_and_status_and_requeues_failed_ones(
    client, admin_user_session, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.EVENT_HANDLER_MAX_RETRIES = 0

    def refuse(*args, **kwargs):
        raise SMTPException("421 service not available")

    monkeypatch.setattr(email_consumer.EmailMessage, "send", refuse)
    event = unpublished_event()
    handle_recommendation_event_task.apply(args=[event.pk])
    monkeypatch.undo()
    failed = event.deliveries.get(consumer="email")

    listing = client.get("/admin/recommendations/delivery/", {"consumer": "email", "status__exact": "failed"})
    assert listing.status_code == 200
    assert f"/admin/recommendations/delivery/{failed.pk}/" in listing.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/recommendations/delivery/", {"action": "requeue_failed", "_selected_action": [failed.pk]})

    failed.refresh_from_db()
    assert failed.status == "delivered"
    assert len(mail.outbox) == 1


def test_a_viewer_sees_deliveries_but_cannot_requeue_them(client, db):
    from conftest import make_user
    from security.roles import VIEWER

    client.force_login(make_user("support", VIEWER, is_staff=True))

    listing = client.get("/admin/recommendations/delivery/")

    assert listing.status_code == 200
    assert "requeue_failed" not in listing.content.decode()
