"""Events over the machine's real RabbitMQ, consumed by a real Celery worker running in a thread of this process.

Each test gets a queue of its own (deleted afterwards, so nothing is left on the broker) and Celery switched from
eager to the broker. The worker thread opens its own database connection: `transaction=True` makes the test
database shared and committed, as in production, and `serialized_rollback` brings back the roles and standard
definitions that the migrations created. The locmem e-mail outbox is process-wide, so the test sees the worker's
e-mails. Every wait has a deadline.

Most tests start the worker once the API has committed, and wait for it through Celery's `task_postrun` signal
rather than the database: the in-memory SQLite test database takes table locks, so a thread reading it while
the worker writes fails with "database table is locked". The one test with a worker already running while
the API publishes needs PostgreSQL's row locks and runs in the PostgreSQL pass.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from uuid import uuid4

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core import mail
from django.db import connection
from django.utils import timezone
from kombu import Connection, pools

from clinrec.celery import app
from conftest import require_service
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory
from recommendations.models import Notification, Recommendation, RecommendationDailyCount, RecommendationEvent
from recommendations.services import publish_pending_events
from recommendations.tasks import send_event_to_consumer
from recommendations.tests.factories import PatientRecommendationFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DEADLINE_SECONDS = 20.0
CLOSED_PORT_BROKER = "amqp://guest:guest@127.0.0.1:1//"
HANDLER_TASK = "recommendations.handle_recommendation_event"
BATCH_HANDLER_TASK = "recommendations.handle_recommendation_events"
CELERY_KEYS = (
    "broker_url",
    "task_always_eager",
    "task_default_queue",
    "worker_enable_remote_control",
    "broker_heartbeat",
)


@dataclass
class Broker:
    url: str
    queue: str


def wait_until(condition: Callable[[], bool], *, what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"Waited {timeout:.0f} s for {what}.")
        time.sleep(0.05)


def point_celery_at(url: str) -> None:
    """Use `url` from now on: pooled connections to the previous broker would otherwise be reused."""
    app.conf.broker_url = url
    pools.reset()
    app._after_fork()  # Celery's own way to forget its connection and producer pools


def event_status(event_id: int) -> str:
    return RecommendationEvent.objects.get(pk=event_id).status


def consumed_count(recommendation_id: str) -> int:
    return sum(
        RecommendationDailyCount.objects.filter(recommendation_id=recommendation_id).values_list("count", flat=True)
    )


@contextmanager
def celery_over_the_network(settings, url: str) -> Iterator[str]:
    """Celery publishes to `url` instead of running tasks eagerly, on a queue of its own; yields the queue name.

    Everything is put back afterwards, so the eager tests that follow are unaffected.
    """
    queue = f"clinrec-test-{uuid4().hex[:8]}"
    previous = {key: app.conf.changes[key] for key in CELERY_KEYS if key in app.conf.changes}
    previous_consume_from = app.amqp.queues._consume_from
    settings.CELERY_TASK_ALWAYS_EAGER = False  # health and anything else that asks Django settings
    settings.CELERY_BROKER_URL = url
    app.conf.update(
        task_always_eager=False,
        task_default_queue=queue,
        worker_enable_remote_control=False,  # its pidbox exchange would stay behind on the broker
        broker_heartbeat=0,  # without a heartbeat timer the worker stops within a second, not ten
    )
    point_celery_at(url)
    try:
        yield queue
    finally:
        for key in CELERY_KEYS:
            app.conf.changes.pop(key, None)
        app.conf.changes.update(previous)
        app.amqp.queues._consume_from = previous_consume_from  # a worker narrows it to the test queue
        pools.reset()
        app._after_fork()


@pytest.fixture
def broker(settings) -> Iterator[Broker]:
    """Celery talks to the real RabbitMQ, on a queue only this test uses and deleted afterwards."""
    url = require_service("rabbitmq")
    with celery_over_the_network(settings, url) as queue:
        try:
            yield Broker(url=url, queue=queue)
        finally:
            with Connection(url, connect_timeout=5) as amqp:
                channel = amqp.default_channel
                channel.queue_delete(queue)
                channel.exchange_delete(queue)


@pytest.fixture
def hung_broker_url() -> Iterator[str]:
    """A broker that accepts connections and never answers, like RabbitMQ behind a dropping firewall."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"amqp://guest:guest@127.0.0.1:{server.getsockname()[1]}//"
    finally:
        stop.set()
        thread.join(5)
        for sock in [*accepted, server]:
            sock.close()


@contextmanager
def consuming(broker: Broker) -> Iterator[list[tuple[int, bool]]]:
    """A real worker consuming the test queue; yields (event id, handler result) of every event handled."""
    handled: list[tuple[int, bool]] = []

    def record(sender=None, args=(), retval=None, **kwargs) -> None:
        if sender is not None and sender.name == HANDLER_TASK:
            handled.append((args[0], retval))
        elif sender is not None and sender.name == BATCH_HANDLER_TASK:  # several events in one message
            handled.extend(zip(args[0], retval, strict=True))

    task_postrun.connect(record, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[broker.queue], shutdown_timeout=30):
            yield handled
    finally:
        task_postrun.disconnect(record)


def wait_for_handling(handled: list[tuple[int, bool]], count: int) -> None:
    wait_until(lambda: len(handled) >= count, what=f"the worker to handle {count} message(s), handled {handled}")


def test_evaluation_over_http_is_published_then_consumed_by_the_worker(broker, clinician_client):
    patient = PatientFactory(bmi=34.0, email="pat@example.org")

    response = clinician_client.post(f"/api/v1/patients/{patient.pk}/evaluate/")

    assert response.status_code == 200, response.content
    (item,) = response.json()["recommendations"]
    event = RecommendationEvent.objects.get(pk=item["event"])
    assert (event.status, event.attempts) == ("published", 1)
    assert event.published_at is not None
    assert mail.outbox == []

    with consuming(broker) as handled:
        wait_for_handling(handled, 1)

    assert handled == [(event.pk, True)]
    event.refresh_from_db()
    assert event.status == "consumed"
    assert event.published_at <= event.consumed_at
    (message,) = mail.outbox
    assert "pat@example.org" in message.bcc
    assert "Weight Management Program" in message.subject
    assert Notification.objects.filter(event=event).count() == 1
    assert consumed_count("weight-management") == 1


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="a worker writing while the API publishes needs PostgreSQL row locks; runs in the PostgreSQL pass",
)
def test_running_worker_consumes_each_event_of_an_evaluation_as_it_commits(broker, clinician_client):
    patient = PatientFactory(
        birth_date=date(timezone.localdate().year - 80, 1, 1), chronic_pain=True, bmi=34.0, email="pat@example.org"
    )

    with consuming(broker) as handled:
        response = clinician_client.post(f"/api/v1/patients/{patient.pk}/evaluate/")
        assert response.status_code == 200, response.content
        event_ids = {item["event"] for item in response.json()["recommendations"]}
        wait_until(
            lambda: (
                set(RecommendationEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True))
                == {"consumed"}
            ),
            what=f"events {sorted(event_ids)} to be consumed",
        )

    assert sorted(handled) == sorted((event_id, True) for event_id in event_ids)
    assert len(event_ids) == 2
    assert {event.attempts for event in RecommendationEvent.objects.filter(pk__in=event_ids)} == {1}
    assert len(mail.outbox) == 2
    assert Notification.objects.filter(event__in=event_ids).count() == 2
    assert consumed_count("physical-therapy") == consumed_count("weight-management") == 1


def test_broker_down_evaluation_answers_fast_and_the_event_waits_until_it_is_back(broker, clinician_client):
    patient = PatientFactory(bmi=34.0)
    point_celery_at(CLOSED_PORT_BROKER)

    started = time.monotonic()
    response = clinician_client.post(f"/api/v1/patients/{patient.pk}/evaluate/")
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.content
    assert elapsed < 5, f"evaluation took {elapsed:.1f} s with the broker down"
    (item,) = response.json()["recommendations"]
    event = RecommendationEvent.objects.get(pk=item["event"])
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.last_error
    assert mail.outbox == []

    point_celery_at(broker.url)
    assert publish_pending_events() == 1
    assert event_status(event.pk) == "published"
    with consuming(broker) as handled:
        wait_for_handling(handled, 1)

    assert handled == [(event.pk, True)]
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("consumed", 2)
    assert len(mail.outbox) == 1
    assert consumed_count("weight-management") == 1


def test_hung_broker_delays_an_evaluation_by_one_connection_timeout_not_one_per_recommendation(
    settings, hung_broker_url, clinician_client
):
    patient = PatientFactory(
        birth_date=date(timezone.localdate().year - 80, 1, 1), chronic_pain=True, bmi=34.0, email="pat@example.org"
    )
    PatientProcedureFactory(patient=patient)  # a recent orthopaedic surgery: three recommendations

    with celery_over_the_network(settings, hung_broker_url):
        started = time.monotonic()
        response = clinician_client.post(f"/api/v1/patients/{patient.pk}/evaluate/")
        elapsed = time.monotonic() - started

    assert response.status_code == 200, response.content
    assert len(response.json()["recommendations"]) == 3
    timeout = app.conf.broker_connection_timeout
    assert elapsed < 2 * timeout + 1, f"evaluation took {elapsed:.1f} s; one broker timeout is {timeout} s"
    events = RecommendationEvent.objects.filter(patient_id=patient.pk)
    assert {event.status for event in events} == {"pending"}
    assert sorted(event.attempts for event in events) == [0, 0, 1]


def test_event_delivered_twice_is_handled_once(broker):
    link = PatientRecommendationFactory(
        patient=PatientFactory(name="Elena Rossi", bmi=34.0),
        recommendation=Recommendation.objects.get(pk="weight-management"),
        source="rule",
        reason="BMI 34 > 30",
    )
    event = RecommendationEvent.objects.create(
        patient_id=link.patient_id,
        recommendation_id=link.recommendation_id,
        patient_recommendation=link,
        payload={
            "patient_name": "Elena Rossi",
            "recommendation_name": "Weight Management Program",
            "reason": link.reason,
        },
    )

    send_event_to_consumer(event.pk)
    send_event_to_consumer(event.pk)  # e.g. the relay and a redelivery after a lost acknowledgement
    with consuming(broker) as handled:
        wait_for_handling(handled, 2)

    assert sorted(handled) == [(event.pk, False), (event.pk, True)]
    assert event_status(event.pk) == "consumed"
    assert len(mail.outbox) == 1
    assert Notification.objects.filter(event=event).count() == 1
    assert consumed_count("weight-management") == 1


def test_relay_sends_a_backlog_in_batches_and_the_worker_handles_each_event_once(broker, settings):
    settings.EVENT_BATCH_SIZE = 2
    event_ids = [
        RecommendationEvent.objects.create(
            patient_id=link.patient_id,
            recommendation_id=link.recommendation_id,
            patient_recommendation=link,
            payload={"recommendation_name": "Weight Management Program", "reason": link.reason},
        ).pk
        for link in PatientRecommendationFactory.create_batch(
            5, recommendation=Recommendation.objects.get(pk="weight-management"), source="rule"
        )
    ]

    assert publish_pending_events() == 5  # three messages: two, two and one event
    send_event_to_consumer(event_ids[0])  # and one redelivered alone
    with consuming(broker) as handled:
        wait_for_handling(handled, 6)

    assert sorted(handled) == sorted([(event_ids[0], False), *((event_id, True) for event_id in event_ids)])
    assert {event_status(event_id) for event_id in event_ids} == {"consumed"}
    assert len(mail.outbox) == 5
    assert consumed_count("weight-management") == 5
