"""No event is lost between ClinRec and RabbitMQ, whatever the link does: fault tests through a TCP proxy.

ClinRec publishes through a proxy the test owns (`tcp_proxy` in conftest.py) in front of the machine's real
RabbitMQ, while the worker reads the test's queue directly (Celery's `broker_write_url` / `broker_read_url`),
so each fault hits exactly the link that publishes events. For each fault the test warms the link with one
evaluation, breaks it, runs N evaluations over the API, heals it, checks that the next evaluation publishes at
once (no stale pooled connection), lets the relay run, then starts the worker: every event must end `consumed`,
once — one e-mail, one notification, one count each — however many times its message was delivered.

Each test prints a summary line (events, how they stood after the fault, re-sent, consumed, duplicates, lost):
`pytest recommendations/tests/test_broker_faults.py -v -s` reproduces the figures of the closing note.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.core import mail
from kombu import Connection, pools

from clinrec.celery import app
from clinrec.testing.tcp_proxy import TcpProxy
from patients.tests.factories import PatientFactory
from recommendations.models import Notification, RecommendationEvent
from recommendations.services import publish_pending_events
from recommendations.tests.test_events_integration import Broker, consumed_count, consuming
from recommendations.tests.test_events_integration import broker as broker  # the fixture, for pytest

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

N = 20  # evaluations during each fault
PROXY_KEYS = ("broker_write_url", "broker_connection_timeout", "broker_transport_options")
SETTLE_SECONDS = 20.0


@dataclass
class Link:
    """The publishing link of this test: the proxy, and the timeouts ClinRec uses over it."""

    proxy: TcpProxy
    broker: Broker
    settings: object

    def use_timeouts(self, *, connect: float, confirm: float) -> None:
        """Short timeouts keep a faulty link from costing the test more than a fraction of a second a request."""
        self.settings.OUTBOX_CONFIRM_TIMEOUT_SECONDS = confirm
        app.conf.update(
            broker_connection_timeout=connect,
            broker_transport_options={**app.conf.broker_transport_options, "read_timeout": 2, "write_timeout": 2},
        )
        forget_pooled_connections()


def forget_pooled_connections() -> None:
    pools.reset()
    app._after_fork()


@pytest.fixture
def link(broker, tcp_proxy, settings) -> Iterator[Link]:
    """Celery publishes through a proxy in front of the real RabbitMQ; the worker reads the broker directly."""
    proxy = tcp_proxy(broker.url)
    previous = {key: app.conf.changes[key] for key in PROXY_KEYS if key in app.conf.changes}
    app.conf.update(broker_write_url=proxy.url_for(broker.url))
    faulty = Link(proxy=proxy, broker=broker, settings=settings)
    faulty.use_timeouts(connect=1.0, confirm=1.0)
    try:
        yield faulty
    finally:
        proxy.heal()
        proxy.latency = 0
        forget_pooled_connections()
        for key in PROXY_KEYS:
            app.conf.changes.pop(key, None)
        app.conf.changes.update(previous)
        forget_pooled_connections()


def evaluate_obese_patient(client) -> int:
    """One evaluation over the API that makes one new recommendation; returns its event id."""
    patient = PatientFactory(bmi=34.0)
    response = client.post(f"/api/v1/patients/{patient.pk}/evaluate/")
    assert response.status_code == 200, response.content
    (item,) = response.json()["recommendations"]
    return item["event"]


def statuses(event_ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in RecommendationEvent.objects.filter(pk__in=event_ids).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


def wait_quietly(condition: Callable[[], bool], timeout: float) -> bool:
    """Wait for `condition` at most `timeout` seconds; the assertions that follow say what was missing."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def queue_is_empty(broker: Broker) -> bool:
    with Connection(broker.url, connect_timeout=5) as amqp:
        return amqp.default_channel.queue_declare(broker.queue, passive=True).message_count == 0


def consume_everything(broker: Broker, event_ids: list[int]) -> list[tuple[int, bool]]:
    """Run the worker until every event was handled and the queue is empty; returns every handling."""
    wanted = set(event_ids)
    with consuming(broker) as handled:
        wait_quietly(lambda: wanted <= {event_id for event_id, done in handled if done}, SETTLE_SECONDS)
        wait_quietly(lambda: queue_is_empty(broker), 5)
        time.sleep(0.3)  # the last duplicate fetched may still be in the handler
    return list(handled)


def report_and_assert_consumed_once(
    fault: str, event_ids: list[int], after_fault: dict[str, int], resent: int, handled: list[tuple[int, bool]]
) -> None:
    consumed = {event_id for event_id, done in handled if done}
    consumed_twice = len([1 for event_id, done in handled if done]) - len(consumed)
    duplicates = len([1 for event_id, done in handled if not done])
    final = statuses(event_ids)
    print(
        f"\n[{fault}] events={len(event_ids)} after-fault={after_fault} relay-sent={resent} "
        f"consumed={len(consumed & set(event_ids))} consumed-twice={consumed_twice} "
        f"duplicate-deliveries-skipped={duplicates} e-mails={len(mail.outbox)} "
        f"lost={len(set(event_ids) - consumed)} final={final}"
    )
    assert final == {"consumed": len(event_ids)}, f"not every event was consumed: {final}"
    assert consumed == set(event_ids)
    assert consumed_twice == 0
    assert len(mail.outbox) == len(event_ids)
    assert Notification.objects.filter(event__in=event_ids).count() == len(event_ids)
    assert consumed_count("weight-management") == len(event_ids)


def run_fault(
    fault: str, link: Link, client, *, start: Callable[[], None], during: Callable[[], None] | None = None
) -> None:
    """Warm the link, break it with `start`, evaluate N patients, heal, evaluate once more, relay, consume."""
    event_ids = [evaluate_obese_patient(client)]  # a pooled connection exists when the fault starts
    assert RecommendationEvent.objects.get(pk=event_ids[0]).status == "published"

    start()
    stop = threading.Event()
    saboteur = None
    if during is not None:

        def sabotage() -> None:
            while not stop.wait(0.5):
                during()

        saboteur = threading.Thread(target=sabotage, daemon=True)
        saboteur.start()
    try:
        event_ids += [evaluate_obese_patient(client) for _ in range(N)]
    finally:
        stop.set()
        if saboteur is not None:
            saboteur.join(5)
    link.proxy.heal()
    link.proxy.latency = 0
    after_fault = statuses(event_ids)

    healed = evaluate_obese_patient(client)
    healed_status = RecommendationEvent.objects.get(pk=healed).status
    event_ids.append(healed)
    resent = publish_pending_events()  # the relay's next run
    assert statuses(event_ids).get("pending", 0) == 0, "the relay left events pending with the link healed"

    handled = consume_everything(link.broker, event_ids)
    report_and_assert_consumed_once(fault, event_ids, after_fault, resent, handled)
    assert healed_status == "published", "the first evaluation after the link healed could not publish"


def test_broker_refusing_connections_loses_no_event(link, clinician_client):
    run_fault("refused", link, clinician_client, start=link.proxy.refuse)

    assert link.proxy.connections_accepted >= 2


def test_black_holed_link_loses_no_event_and_costs_each_request_one_short_timeout(link, clinician_client):
    link.use_timeouts(connect=0.25, confirm=0.25)

    run_fault("black-holed", link, clinician_client, start=link.proxy.black_hole)

    assert link.proxy.bytes_dropped > 0


def test_connections_reset_mid_stream_lose_no_event(link, clinician_client):
    def start() -> None:
        link.proxy.latency = 0.03  # a publish is in flight long enough for a reset to catch it

    run_fault("reset", link, clinician_client, start=start, during=link.proxy.reset)

    assert link.proxy.resets >= 3


def test_slow_link_loses_no_event(link, clinician_client):
    def start() -> None:
        link.proxy.latency = 0.03

    run_fault("latency", link, clinician_client, start=start)


def test_event_whose_message_was_lost_is_published_again_after_the_configured_time(link, clinician_client, settings):
    settings.OUTBOX_REPUBLISH_AFTER_SECONDS = 0.5
    event_id = evaluate_obese_patient(clinician_client)
    assert RecommendationEvent.objects.get(pk=event_id).status == "published"
    with Connection(link.broker.url, connect_timeout=5) as amqp:
        assert amqp.default_channel.queue_purge(link.broker.queue) == 1  # the message is lost on the broker

    assert publish_pending_events() == 0  # not yet: a worker may simply be busy
    time.sleep(0.6)
    resent = publish_pending_events()

    handled = consume_everything(link.broker, [event_id])
    report_and_assert_consumed_once("lost-message", [event_id], {"published": 1}, resent, handled)
    event = RecommendationEvent.objects.get(pk=event_id)
    assert (event.publish_count, event.attempts) == (2, 2)
    assert handled == [(event_id, True)]


def test_pooled_connection_reset_while_idle_is_replaced_before_the_next_publish(link, clinician_client):
    first = evaluate_obese_patient(clinician_client)
    link.proxy.reset()  # e.g. RabbitMQ restarted while the connection sat in the pool
    time.sleep(0.2)

    second = evaluate_obese_patient(clinician_client)

    event = RecommendationEvent.objects.get(pk=second)
    assert (event.status, event.attempts, event.last_error) == ("published", 1, "")
    assert link.proxy.connections_accepted == 2
    handled = consume_everything(link.broker, [first, second])
    report_and_assert_consumed_once("idle-reset", [first, second], {"published": 2}, 0, handled)
