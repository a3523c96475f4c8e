"""End to end, in the production shape: gunicorn and a Celery worker as real processes, on a fresh PostgreSQL
database, Redis for the cache and RabbitMQ carrying the events — everything over HTTP.

The stack is built once for the module on this machine's services, in isolation from anything else using
them (its own database, Redis key prefix and RabbitMQ queue), and torn down even when a test fails.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from kombu import Connection
from psycopg import sql

from conftest import require_service

pytestmark = pytest.mark.services

BASE_DIR = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
STARTUP_DEADLINE = 60.0
CONSUME_DEADLINE = 30.0
STOP_DEADLINE = 20.0
REDIS_DB = 14

EXPECTED = {
    "108": {"Physical Therapy", "Post-Op Rehabilitation Plan"},
    "105": {"Weight Management Program"},
    "102": {"Post-Op Rehabilitation Plan"},
}

# ClinRec settings of the machine must not leak into the stack (pytest-django sets the test settings module,
# CI sets DATABASE_URL and REDIS_URL): the stack's environment is only what the fixture gives it.
LEAKY_PREFIXES = ("DJANGO_", "CELERY_", "DATABASE_", "REDIS_", "CACHE_", "HEALTH_", "OUTBOX_", "EVENT_", "EMAIL_")


@dataclass
class Stack:
    """A running ClinRec: where to reach it, how it was configured, and its processes' logs."""

    base_url: str
    env: dict[str, str]
    redis_url: str
    key_prefix: str
    queue: str
    admin: tuple[str, str]
    logs: dict[str, Path] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def diagnostics(self, lines: int = 60) -> str:
        """The tail of every process log, and whether each process still runs: for assertion messages."""
        parts = []
        for name, path in self.logs.items():
            process = self.processes.get(name)
            state = "" if process is None else f" (exit code {process.poll()})" if process.poll() is not None else ""
            text = path.read_text(errors="replace") if path.exists() else "(no log)"
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"----- {name}{state}: {path} -----\n{tail}")
        return "\n".join(parts)


# --- HTTP ---------------------------------------------------------------------------------------------------


def http(
    method: str,
    url: str,
    *,
    token: str | None = None,
    form: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, Any]:
    """One request; returns (status, decoded JSON body or the raw text). HTTP errors are answers, not raises."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if form is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    text = body.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def results(body: Any) -> list:
    """The rows of a list answer, paginated (`{count, results}`) or not."""
    return body["results"] if isinstance(body, dict) and "results" in body else body


def poll(check: Callable[[], Any], *, deadline: float, interval: float = 0.25) -> Any:
    """Call `check` until it returns something truthy or the deadline passes; returns its last answer."""
    until = time.monotonic() + deadline
    while True:
        answer = check()
        if answer or time.monotonic() >= until:
            return answer
        time.sleep(interval)


# --- Building and tearing down the stack ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_path(url: str, path: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=path))


def manage(env: dict[str, str], *arguments: str, log: Path) -> None:
    """`python manage.py ...` with the stack's environment; fails with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    with log.open("a") as handle:
        handle.write(f"$ manage.py {' '.join(arguments)} -> {result.returncode}\n{result.stdout}{result.stderr}\n")
    assert result.returncode == 0, f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}"


def start(stack: Stack, name: str, command: list[str], log_dir: Path) -> subprocess.Popen:
    log = log_dir / f"{name}.log"
    stack.logs[name] = log
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=stack.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: gunicorn's workers are stopped with it
        )
    stack.processes[name] = process
    return process


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, then SIGKILL if it has not exited within the deadline.

    Signals go to the group only while its leader is alive and unreaped, so its id cannot have been reused.
    """
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_DEADLINE)


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def delete_queue(broker_url: str, queue: str) -> None:
    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        channel.queue_delete(queue)
        channel.exchange_delete(queue)  # Celery declares a direct exchange named after the default queue


def delete_keys(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def wait_until_serving(stack: Stack) -> None:
    def ready() -> bool:
        for name, process in stack.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode} while starting\n{stack.diagnostics()}")
        try:
            status, _ = http("GET", f"{stack.base_url}/api/v1/health/", timeout=5)
        except OSError:
            return False
        worker_log = stack.logs["worker"].read_text(errors="replace")
        return status == 200 and " ready." in worker_log

    assert poll(ready, deadline=STARTUP_DEADLINE, interval=0.5), (
        f"the stack did not come up within {STARTUP_DEADLINE}s\n{stack.diagnostics()}"
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    postgres_url = require_service("postgres")
    redis_service_url = require_service("redis")
    broker_url = require_service("rabbitmq")

    suffix = secrets.token_hex(4)
    database = f"clinrec_e2e_{suffix}"
    redis_url = with_path(redis_service_url, f"/{REDIS_DB}")
    log_dir = tmp_path_factory.mktemp("e2e-logs")
    port = free_port()
    admin = ("e2e-admin", f"E2e-{secrets.token_urlsafe(12)}")

    env = {key: value for key, value in os.environ.items() if not key.startswith(LEAKY_PREFIXES)}
    env.update(
        DJANGO_SETTINGS_MODULE="clinrec.settings",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_SESSION_COOKIE_SECURE="0",
        DJANGO_CSRF_COOKIE_SECURE="0",
        DATABASE_URL=with_path(postgres_url, f"/{database}"),
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"e2e-{suffix}",
        CELERY_BROKER_URL=broker_url,
        CELERY_TASK_DEFAULT_QUEUE=f"clinrec-e2e-{suffix}",
        HEALTH_REQUIRED_CHECKS="database",
        PYTHONUNBUFFERED="1",
        DJANGO_SUPERUSER_USERNAME=admin[0],
        DJANGO_SUPERUSER_PASSWORD=admin[1],
        DJANGO_SUPERUSER_EMAIL="e2e-admin@example.org",
    )
    stack = Stack(
        base_url=f"http://127.0.0.1:{port}",
        env=env,
        redis_url=redis_url,
        key_prefix=env["CACHE_KEY_PREFIX"],
        queue=env["CELERY_TASK_DEFAULT_QUEUE"],
        admin=admin,
    )

    with ExitStack() as cleanup:
        # Registered as each resource is made, undone in reverse order, each even if another one fails.
        create_database(postgres_url, database)
        cleanup.callback(drop_database, postgres_url, database)
        cleanup.callback(delete_keys, redis_url, stack.key_prefix)

        setup_log = log_dir / "setup.log"
        stack.logs["setup"] = setup_log
        manage(env, "migrate", "--noinput", log=setup_log)
        manage(env, "seed_db", log=setup_log)
        manage(env, "seed_db", log=setup_log)  # the spec: it can be run twice without error or duplicates
        manage(env, "createsuperuser", "--noinput", log=setup_log)

        cleanup.callback(delete_queue, broker_url, stack.queue)
        worker = start(
            stack,
            "worker",
            [
                sys.executable,
                *("-m", "celery", "-A", "clinrec", "worker", "--pool=solo", "-Q", stack.queue),
                *("--loglevel=INFO", "--without-gossip", "--without-mingle"),
                f"--hostname=e2e-{suffix}@%h",
            ],
            log_dir,
        )
        cleanup.callback(stop, worker)
        api = start(
            stack,
            "gunicorn",
            [
                str(BIN_DIR / "gunicorn"),
                "clinrec.wsgi:application",
                *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--timeout", "60", "--access-logfile", "-"),
            ],
            log_dir,
        )
        cleanup.callback(stop, api)

        wait_until_serving(stack)
        yield stack


# --- What a client sees --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    username, password = stack.admin
    status, body = http(
        "POST", f"{stack.base_url}/api/v1/security/token/", form={"username": username, "password": password}
    )
    assert status == 200, f"token: {status} {body}\n{stack.diagnostics()}"
    assert body["access"] and body["refresh"]
    return body["access"]


@pytest.fixture(scope="module")
def evaluations(stack: Stack, token: str) -> dict[str, dict]:
    """The first evaluation of each patient of the spec's table."""
    answers = {}
    for patient in EXPECTED:
        status, body = http("POST", f"{stack.base_url}/api/v1/patients/{patient}/evaluate/", token=token)
        assert status == 200, f"evaluate {patient}: {status} {body}\n{stack.diagnostics()}"
        answers[patient] = body
    return answers


@pytest.fixture(scope="module")
def consumed_events(stack: Stack, token: str, evaluations: dict[str, dict]) -> list[dict]:
    """Every event, once the worker has consumed all of them (polled with a deadline)."""
    expected_ids = {rec["event"] for body in evaluations.values() for rec in body["recommendations"]}
    last: list[dict] = []

    def all_consumed() -> bool:
        nonlocal last
        status, body = http("GET", f"{stack.base_url}/api/v1/events/?limit=500", token=token)
        assert status == 200, f"events: {status} {body}\n{stack.diagnostics()}"
        last = results(body)
        mine = [event for event in last if event["id"] in expected_ids]
        return len(mine) == len(expected_ids) and all(event["status"] == "consumed" for event in mine)

    assert poll(all_consumed, deadline=CONSUME_DEADLINE), (
        f"events not all consumed within {CONSUME_DEADLINE}s: "
        f"{[(e['id'], e['patient'], e['status'], e['attempts'], e['last_error']) for e in last]}\n{stack.diagnostics()}"
    )
    return [event for event in last if event["id"] in expected_ids]


def test_a_token_comes_from_form_fields(token):
    assert token.count(".") == 2  # a JWT: header.payload.signature


@pytest.mark.parametrize("patient", sorted(EXPECTED))
def test_evaluation_gives_the_spec_recommendations(stack, evaluations, patient):
    body = evaluations[patient]

    assert body["patient"] == patient
    names = {rec["name"] for rec in body["recommendations"]}
    assert names == EXPECTED[patient], f"{patient}: {body}\n{stack.diagnostics()}"
    for rec in body["recommendations"]:
        assert rec["new"] is True
        assert isinstance(rec["event"], int)
        assert isinstance(rec["patient_recommendation"], int)
        assert rec["reason"]


def test_the_worker_consumes_every_event_of_patient_108(stack, token, evaluations):
    wanted = {rec["event"] for rec in evaluations["108"]["recommendations"]}
    answer: list[dict] = []

    def consumed() -> bool:
        nonlocal answer
        status, body = http("GET", f"{stack.base_url}/api/v1/events/?patient=108", token=token)
        assert status == 200, f"events: {status} {body}\n{stack.diagnostics()}"
        answer = results(body)
        return {e["id"] for e in answer} == wanted and all(e["status"] == "consumed" for e in answer)

    assert poll(consumed, deadline=CONSUME_DEADLINE), f"{answer}\n{stack.diagnostics()}"
    assert all(event["patient"] == "108" for event in answer)


def test_the_worker_logs_and_notifies_each_event(stack, consumed_events):
    log = stack.logs["worker"].read_text(errors="replace")

    for event in consumed_events:
        assert f'"event_id": {event["id"]}' in log, f"no structured log line for event {event['id']}\n{log[-5000:]}"
    # The console e-mail backend writes each notification to the worker's output.
    assert "Subject: ClinRec: Physical Therapy recommended for patient 108" in log, log[-5000:]


def test_analytics_counts_what_the_worker_consumed(stack, token, evaluations, consumed_events):
    status, body = http("GET", f"{stack.base_url}/api/v1/analytics/recommendations/", token=token)

    assert status == 200, f"analytics: {status} {body}\n{stack.diagnostics()}"
    totals: dict[str, int] = {}
    for row in results(body):
        assert set(row) >= {"recommendation", "name", "day", "count"}
        totals[row["recommendation"]] = totals.get(row["recommendation"], 0) + row["count"]
    expected: dict[str, int] = {}
    for answer in evaluations.values():
        for rec in answer["recommendations"]:
            expected[rec["recommendation"]] = expected.get(rec["recommendation"], 0) + 1
    assert totals == expected, f"{body}\n{stack.diagnostics()}"


def test_reads_are_cached_in_redis_under_the_prefix(stack, token):
    for _ in range(2):
        status, body = http("GET", f"{stack.base_url}/api/v1/patients/108/", token=token)
        assert status == 200, f"{status} {body}\n{stack.diagnostics()}"
        assert body["id"] == "108"

    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
    try:
        keys = [key.decode() for key in client.scan_iter(match=f"{stack.key_prefix}:*", count=500)]
    finally:
        client.close()
    assert any("api-read" in key for key in keys), f"no cached read under {stack.key_prefix}: {keys}"


def test_health_reports_postgresql_redis_and_rabbitmq_up(stack):
    status, body = http("GET", f"{stack.base_url}/api/v1/health/")

    assert status == 200, f"{status} {body}\n{stack.diagnostics()}"
    assert body["status"] == "ok", body
    checks = body["checks"]
    assert checks["database"]["status"] == "up" and checks["database"]["backend"] == "postgresql", checks
    assert checks["cache"]["status"] == "up" and checks["cache"]["backend"] == "RedisCache", checks
    assert checks["broker"]["status"] == "up" and checks["broker"]["backend"] == "amqp", checks


def test_evaluating_again_recommends_nothing_new(stack, token, evaluations, consumed_events):
    status, body = http("POST", f"{stack.base_url}/api/v1/patients/108/evaluate/", token=token)

    assert status == 200, f"{status} {body}\n{stack.diagnostics()}"
    first = {rec["recommendation"]: rec for rec in evaluations["108"]["recommendations"]}
    again = {rec["recommendation"]: rec for rec in body["recommendations"]}
    assert again.keys() == first.keys()
    for recommendation, rec in again.items():
        assert rec["new"] is False
        assert rec["event"] is None
        assert rec["patient_recommendation"] == first[recommendation]["patient_recommendation"]
    status, events = http("GET", f"{stack.base_url}/api/v1/events/?patient=108", token=token)
    assert len(results(events)) == len(first), events


def test_without_a_token_the_api_answers_401(stack):
    status, _ = http("GET", f"{stack.base_url}/api/v1/patients/")

    assert status == 401
