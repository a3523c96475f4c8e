"""The outbox relay: it drains a backlog batch after batch, re-publishes what was never consumed, gives up clearly.

With Celery eager (the embedded default) the consumer runs inside the publish, so these tests see the whole
life of an event in one process. A "lossy broker" stands for RabbitMQ confirming a message that then never
reaches a consumer (a purged queue, a lost node): the relay must publish it again after
OUTBOX_REPUBLISH_AFTER_SECONDS, and after OUTBOX_MAX_REPUBLISHES mark it `failed` for an operator. The fault
tests with the real broker are in test_broker_faults.py.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from clinrec.celery import app
from patients.tests.factories import PatientFactory
from recommendations.models import Notification, RecommendationEvent
from recommendations.services import evaluate_patient, handle_recommendation_event, publish_pending_events
from recommendations.tasks import Publication, publish_pending_events_task

pytestmark = pytest.mark.django_db


def pending_events(count: int) -> list[int]:
    """`count` evaluations, each leaving one event in the outbox (the after-commit publish never ran)."""
    return [evaluate_patient(patient_id=PatientFactory(bmi=34.0).pk).recommendations[0].event for _ in range(count)]


def statuses(event_ids: list[int]) -> list[str]:
    return sorted(RecommendationEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True))


def published_long_ago(event_id: int) -> None:
    """As if the broker confirmed the event longer ago than OUTBOX_REPUBLISH_AFTER_SECONDS."""
    long_ago = timezone.now() - timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS + 1)
    RecommendationEvent.objects.filter(pk=event_id).update(published_at=long_ago)


@pytest.fixture
def lossy_broker(monkeypatch):
    """The broker confirms every publish and the message is then lost; the list records each publish."""
    published: list[int] = []

    def confirmed_then_lost(event_ids: list[int]) -> Publication:
        published.extend(event_ids)
        return Publication(confirmed=list(event_ids))

    monkeypatch.setattr("recommendations.tasks.publish_events", confirmed_then_lost)
    return published


# --- draining a backlog -------------------------------------------------------------------------------------------


def test_relay_drains_a_backlog_larger_than_a_batch_in_one_run(settings):
    settings.OUTBOX_RELAY_BATCH_SIZE = 10
    event_ids = pending_events(25)

    sent = publish_pending_events_task.apply().get()

    assert sent == 25
    assert statuses(event_ids) == ["consumed"] * 25
    assert len(mail.outbox) == 25


def test_relay_stops_once_its_time_budget_is_spent_and_the_next_run_goes_on():
    event_ids = pending_events(12)

    assert publish_pending_events(batch_size=5, time_budget=0) == 5  # one batch, then the budget is spent
    assert statuses(event_ids).count("pending") == 7
    assert publish_pending_events(batch_size=5, time_budget=0) == 5
    assert publish_pending_events(batch_size=5, time_budget=0) == 2
    assert statuses(event_ids) == ["consumed"] * 12


def test_publish_pending_events_command_reports_its_progress_batch_by_batch():
    pending_events(7)
    out = StringIO()

    call_command("publish_pending_events", "--batch-size", "3", stdout=out)

    report = out.getvalue()
    assert "batch 1: 3 published so far" in report
    assert "batch 3: 7 published so far" in report
    assert "Published 7 events; 0 still pending." in report


# --- re-publishing what was never consumed ---------------------------------------------------------------------------


def test_event_published_but_not_consumed_in_time_is_published_again(lossy_broker):
    (event_id,) = pending_events(1)
    assert publish_pending_events() == 1
    event = RecommendationEvent.objects.get(pk=event_id)
    assert (event.status, event.publish_count, event.attempts) == ("published", 1, 1)

    assert publish_pending_events() == 0  # not yet: the consumer may simply be busy
    published_long_ago(event_id)
    assert publish_pending_events() == 1

    assert lossy_broker == [event_id, event_id]
    event.refresh_from_db()
    assert (event.status, event.publish_count, event.attempts) == ("published", 2, 2)
    assert event.published_at > timezone.now() - timedelta(seconds=5)  # the wait starts again


def test_event_never_consumed_after_the_maximum_of_republishes_is_failed_with_a_clear_error(settings, lossy_broker):
    settings.OUTBOX_MAX_REPUBLISHES = 2
    (event_id,) = pending_events(1)

    for _ in range(4):
        publish_pending_events()
        published_long_ago(event_id)

    assert lossy_broker == [event_id] * 3  # the first publish and two re-publishes
    event = RecommendationEvent.objects.get(pk=event_id)
    assert event.status == "failed"
    assert "never consumed" in event.last_error
    assert repr(settings.CELERY_TASK_DEFAULT_QUEUE) in event.last_error
    assert "--retry-failed" in event.last_error


def test_event_failed_for_want_of_a_consumer_is_consumed_once_requeued(settings, lossy_broker, monkeypatch):
    settings.OUTBOX_MAX_REPUBLISHES = 0
    (event_id,) = pending_events(1)
    publish_pending_events()
    published_long_ago(event_id)
    out = StringIO()
    call_command("publish_pending_events", stdout=out)
    assert RecommendationEvent.objects.get(pk=event_id).status == "failed"
    assert "Marked 1 events failed" in out.getvalue()

    monkeypatch.undo()  # a worker consumes again
    call_command("publish_pending_events", "--retry-failed", stdout=StringIO())

    event = RecommendationEvent.objects.get(pk=event_id)
    assert (event.status, event.publish_count) == ("consumed", 1)
    assert len(mail.outbox) == 1


def test_consumed_event_is_never_published_again(lossy_broker):
    (event_id,) = pending_events(1)
    handle_recommendation_event(event_id=event_id)
    published_long_ago(event_id)

    assert publish_pending_events() == 0
    assert lossy_broker == []


def test_duplicate_delivery_of_a_republished_event_sends_one_email_and_counts_once(lossy_broker, monkeypatch):
    (event_id,) = pending_events(1)
    publish_pending_events()  # confirmed, then stuck somewhere: not consumed in time
    published_long_ago(event_id)
    monkeypatch.undo()

    assert publish_pending_events() == 1  # re-published, consumed at once (eager)
    assert handle_recommendation_event(event_id=event_id) is False  # the first message turns up after all

    assert len(mail.outbox) == 1
    assert Notification.objects.filter(event_id=event_id).count() == 1
    assert RecommendationEvent.objects.get(pk=event_id).status == "consumed"


# --- concurrent relays --------------------------------------------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks; runs in the PostgreSQL pass")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_relays_never_send_one_event_twice(lossy_broker):
    event_ids = pending_events(40)
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def relay() -> None:
        try:
            barrier.wait(timeout=30)
            publish_pending_events(batch_size=4)
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    assert sorted(lossy_broker) == sorted(event_ids)
    assert statuses(event_ids) == ["published"] * 40


# --- the settings reach Celery (a misspelt CELERY_ setting is silently ignored) -------------------------------------


def test_publisher_confirms_and_broker_timeouts_reach_celery():
    options = app.conf.broker_transport_options
    assert options["confirm_publish"] is True
    assert options["read_timeout"] == options["write_timeout"] == settings.CELERY_BROKER_SOCKET_TIMEOUT
    assert app.conf.broker_heartbeat == settings.CELERY_BROKER_HEARTBEAT
    assert app.conf.broker_connection_timeout == settings.CELERY_BROKER_CONNECTION_TIMEOUT
    # ... and every connection Celery opens to publish carries them.
    publishing = app.connection_for_write("amqp://guest:guest@127.0.0.1:5672//")
    assert publishing.transport_options["confirm_publish"] is True
    assert publishing.connect_timeout == settings.CELERY_BROKER_CONNECTION_TIMEOUT
    relay = app.conf.beat_schedule["publish-pending-events"]
    assert relay["schedule"] == settings.OUTBOX_RELAY_INTERVAL_SECONDS
    assert relay["options"]["expires"] == settings.OUTBOX_RELAY_INTERVAL_SECONDS
    assert settings.OUTBOX_RELAY_TIME_BUDGET_SECONDS < settings.OUTBOX_RELAY_INTERVAL_SECONDS
