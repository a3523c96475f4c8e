"""Reads never show data older than an acknowledged write, whatever Redis did in between.

Each test starts a redis-server of its own (clinrec/tests/redis_server.py) and stops it, freezes it (SIGSTOP),
restarts it from its own dump, or hides it from the writer. Each round acknowledges a write through the API,
then reads it back three ways: the patient's detail, `?search=` on the patient list and the patient
procedures with `?expand=patient`. The tests print `stale reads X/30` (`pytest -s`) for the closing note
of issue 7. Transactional (real commits), as in production: a write's tokens are replaced after its commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import override_settings

from clinrec import redis_breaker
from clinrec.redis_breaker import CircuitBreaker, reset_circuit_breakers
from clinrec.settings import redis_cache
from clinrec.tests.redis_server import PrivateRedis, free_port, redis_server_binary
from clinrec.tests.test_redis_breaker import Clock
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PATIENT = "/api/v1/patients/108/"
PATIENTS = "/api/v1/patients/"
LINKS = "/api/v1/patient-procedures/"
ROUNDS = 10
TIMEOUT = 0.25  # REDIS_SOCKET_TIMEOUT of these tests


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(redis_server_binary(), tmp_path)
    server.start()
    reset_circuit_breakers()
    try:
        # READ_CACHE_LOCAL_ENTRIES=0: every read asks this Redis, as a process that never read the key before
        # would (the memory a process keeps in front of Redis is keyed the same way: clinrec/tests/test_fast_reads.py).
        with override_settings(
            CACHES={"default": redis_cache(server.url, key_prefix="faults", timeout=300)}, READ_CACHE_LOCAL_ENTRIES=0
        ):
            yield server
    finally:
        server.stop()
        reset_circuit_breakers()


@pytest.fixture
def patient_with_history():
    patient = PatientFactory(id="108", name="Round start")
    PatientProcedureFactory(patient=patient)
    return patient


def read_names(client) -> list[str]:
    """The patient's name as the three kinds of cached read show it."""
    detail = client.get(PATIENT)
    search = client.get(PATIENTS, {"search": "108"})
    expanded = client.get(LINKS, {"expand": "patient"})
    assert (detail.status_code, search.status_code, expanded.status_code) == (200, 200, 200)
    detail, search, expanded = detail.json(), search.json(), expanded.json()
    return [detail["name"], search["results"][0]["name"], expanded["results"][0]["patient"]["name"]]


def stale(names: list[str], acknowledged: str) -> int:
    return sum(name != acknowledged for name in names)


def rename(client, name: str) -> None:
    response = client.patch(PATIENT, {"name": name}, format="json")
    assert response.status_code == 200, response.content  # the write is acknowledged


def breaker_of(server: PrivateRedis) -> CircuitBreaker:
    from clinrec.redis_breaker import _breakers

    return _breakers[f"127.0.0.1:{server.port}"]


def report(scenario: str, stale_reads: int, reads: int) -> None:
    print(f"\n[issue 7 stale reads] {scenario}: stale reads {stale_reads}/{reads}")


# --- (a) Redis restarted from its dump: the old data comes back ----------------------------------------------


def test_redis_restarted_from_an_old_dump_serves_no_stale_read(
    private_redis, patient_with_history, viewer_client, clinician_client
):
    stale_reads = 0
    for round_ in range(ROUNDS):
        name = f"Restart {round_}"
        before = read_names(viewer_client)
        assert read_names(viewer_client) == before  # now served from Redis
        private_redis.save_and_stop()

        rename(clinician_client, name)  # acknowledged while Redis is down

        private_redis.start()  # comes back with the entries saved before the write
        assert any(":api-read:" in key for key in private_redis.key_names()), "the old entries are back"
        reset_circuit_breakers()  # as if the breaker's interval had passed: reads go to this Redis again
        stale_reads += stale(read_names(viewer_client), name)

        hits = private_redis.keyspace_hits()
        assert read_names(viewer_client) == [name] * 3
        assert private_redis.keyspace_hits() == hits + 3, "the fresh data is cached in the restarted Redis"

    report("Redis restarted from its dump after a write", stale_reads, 3 * ROUNDS)
    assert stale_reads == 0


# --- (b) Redis hung: one timeout, then skipped; fresh after it wakes up -------------------------------------


@override_settings(CACHE_CIRCUIT_OPEN_SECONDS=60)
def test_hung_redis_costs_one_timeout_then_is_skipped(private_redis, patient_with_history, viewer_client):
    read_names(viewer_client)
    private_redis.freeze()

    started = time.monotonic()
    for _ in range(ROUNDS):
        assert read_names(viewer_client) == ["Round start"] * 3  # from the database
    elapsed = time.monotonic() - started

    breaker = breaker_of(private_redis)
    # 30 reads, each a GET and (on a miss) a SET: one reached for Redis and timed out, the other 59 were
    # refused at once while the circuit is open.
    assert (breaker.failures, breaker.skipped, breaker.state) == (1, 59, CircuitBreaker.OPEN)
    print(f"\n[issue 7 hung Redis] {3 * ROUNDS} reads while frozen: {elapsed:.2f} s in all")


@override_settings(CACHE_CIRCUIT_OPEN_SECONDS=10)
def test_hung_redis_then_woken_serves_no_stale_read(
    private_redis, patient_with_history, viewer_client, clinician_client, monkeypatch
):
    clock = Clock()  # the breaker's clock, moved by the test
    monkeypatch.setattr(redis_breaker, "time", clock)
    stale_reads = 0
    for round_ in range(ROUNDS):
        name = f"Frozen {round_}"
        read_names(viewer_client)
        read_names(viewer_client)  # cached
        private_redis.freeze()
        read_names(viewer_client)  # one timeout opens the circuit

        rename(clinician_client, name)  # acknowledged while Redis hangs

        private_redis.thaw()
        clock.now += 10  # the circuit's interval passes: the next call tries Redis again
        stale_reads += stale(read_names(viewer_client), name)
        assert breaker_of(private_redis).state == CircuitBreaker.CLOSED

    report("Redis frozen (SIGSTOP) during a write, then woken (SIGCONT)", stale_reads, 3 * ROUNDS)
    assert stale_reads == 0


# --- (c) an outage logs one warning per interval, no traceback ----------------------------------------------


@override_settings(CACHE_CIRCUIT_OPEN_SECONDS=10)
def test_outage_logs_one_warning_per_interval_and_one_line_on_recovery(
    private_redis, patient_with_history, viewer_client, caplog, monkeypatch
):
    clock = Clock()  # the breaker's clock: intervals pass when the test says so, however slow the machine
    monkeypatch.setattr(redis_breaker, "time", clock)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="clinrec.redis_breaker")
    private_redis.stop()

    for _ in range(3):  # three intervals of five requests each
        for _ in range(5):
            assert viewer_client.get(PATIENT).status_code == 200
        clock.now += 10

    private_redis.start()
    assert viewer_client.get(PATIENT).status_code == 200

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, [r.getMessage() for r in caplog.records]
    assert all(r.name == "clinrec.redis_breaker" for r in warnings)
    assert f"Redis unreachable at 127.0.0.1:{private_redis.port}" in warnings[0].getMessage()
    assert "serving from the database; next try in 10 s" in warnings[0].getMessage()
    recovered = [r for r in caplog.records if r.levelno == logging.INFO and r.name == "clinrec.redis_breaker"]
    assert [r.getMessage() for r in recovered] == [
        f"Redis reachable again at 127.0.0.1:{private_redis.port}; caching resumed."
    ]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
    print(f"\n[issue 7 Redis down] 15 requests over 3 intervals: {len(warnings)} warnings, 0 tracebacks")


# --- (d) one worker partitioned from Redis writes; another reads ---------------------------------------------


def test_write_by_a_worker_that_cannot_reach_redis_is_seen_by_the_others(
    private_redis, patient_with_history, viewer_client, clinician_client
):
    unreachable = redis_cache(f"redis://127.0.0.1:{free_port()}/0", key_prefix="faults")
    stale_reads = 0
    for round_ in range(ROUNDS):
        name = f"Partition {round_}"
        read_names(viewer_client)
        read_names(viewer_client)  # cached in the shared Redis

        with override_settings(CACHES={"default": unreachable}):  # this worker is cut off from Redis
            rename(clinician_client, name)

        stale_reads += stale(read_names(viewer_client), name)  # a worker that reaches Redis

    report("write by a worker partitioned from Redis", stale_reads, 3 * ROUNDS)
    assert stale_reads == 0


# --- the health check reports Redis as it is, not as the breaker remembers it --------------------------------


@override_settings(CACHE_CIRCUIT_OPEN_SECONDS=60)
def test_health_probes_redis_itself_while_the_circuit_is_open(private_redis, anon_client, viewer_client):
    private_redis.stop()
    assert anon_client.get("/api/v1/health/").json()["checks"]["cache"]["status"] == "down"
    assert breaker_of(private_redis).state == CircuitBreaker.OPEN

    private_redis.start()
    check = anon_client.get("/api/v1/health/").json()["checks"]["cache"]

    assert check["status"] == "up"  # at once, although the interval (60 s) is far from over
    assert breaker_of(private_redis).state == CircuitBreaker.CLOSED  # and the cache is used again
    cache.set("after-health", "yes")
    assert cache.get("after-health") == "yes"


@override_settings(CACHE_CIRCUIT_OPEN_SECONDS=60)
def test_health_reports_a_hung_redis_as_down(private_redis, anon_client):
    private_redis.freeze()

    response = anon_client.get("/api/v1/health/")

    assert response.status_code == 200  # the cache is optional: degraded, not unhealthy
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["cache"]["status"] == "down"
