"""`GET /api/v1/health/`: 200 `ok` when every service answers, 503 when a required one is down, 200 `degraded`
when only an optional one is down; the broker check against the machine's real RabbitMQ and a closed port."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

from clinrec import health
from clinrec.celery import app as celery_app
from conftest import require_service

HEALTH_URL = "/api/v1/health/"

# A Redis nobody listens on: the connection is refused at once, and the short timeouts bound the rest.
DEAD_REDIS_CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "KEY_PREFIX": "health-test",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 0.25,
            "SOCKET_TIMEOUT": 0.25,
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
CLOSED_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"


def _boom() -> dict:
    raise ConnectionError("simulated outage")


@pytest.mark.django_db
def test_health_is_ok_without_a_token_when_everything_is_up(anon_client):
    response = anon_client.get(HEALTH_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker"}
    for name, check in body["checks"].items():
        assert check["status"] == "up", (name, check)
        assert isinstance(check["ms"], float | int)
    assert body["checks"]["database"]["required"] is True


@pytest.mark.django_db
def test_health_is_503_unhealthy_when_the_database_check_fails(anon_client, monkeypatch):
    monkeypatch.setitem(health.CHECKS, "database", _boom)

    response = anon_client.get(HEALTH_URL)

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "down"
    assert "simulated outage" in body["checks"]["database"]["error"]
    assert body["checks"]["cache"]["status"] == "up"


def test_health_is_503_not_500_when_the_database_is_unreachable(anon_client, monkeypatch):
    """A real outage: every connection attempt fails. ATOMIC_REQUESTS must not turn that into a 500."""

    def refuse(self):
        raise OperationalError("connection refused (simulated)")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)

    response = anon_client.get(HEALTH_URL)

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "down"
    assert "OperationalError" in body["checks"]["database"]["error"]


@pytest.mark.django_db
def test_health_is_503_when_a_required_cache_is_down(anon_client, settings):
    settings.CACHES = DEAD_REDIS_CACHES
    settings.HEALTH_REQUIRED_CHECKS = ["database", "cache"]

    started = time.monotonic()
    response = anon_client.get(HEALTH_URL)

    assert time.monotonic() - started < 5
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["cache"]["required"] is True
    assert body["checks"]["database"]["status"] == "up"


@pytest.mark.django_db
def test_health_is_200_degraded_when_only_an_optional_cache_is_down(anon_client, settings):
    settings.CACHES = DEAD_REDIS_CACHES
    settings.HEALTH_REQUIRED_CHECKS = ["database"]

    response = anon_client.get(HEALTH_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["cache"]["required"] is False
    assert body["checks"]["database"]["status"] == "up"


@pytest.mark.django_db
def test_health_is_200_degraded_when_only_the_broker_is_down(anon_client, monkeypatch, settings):
    settings.HEALTH_REQUIRED_CHECKS = ["database"]
    monkeypatch.setitem(health.CHECKS, "broker", _boom)

    response = anon_client.get(HEALTH_URL)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "down"


@pytest.fixture
def real_broker(settings, monkeypatch):
    """Point the check at a broker URL of the test's choosing (the Celery app reads its URL once, at start)."""

    def use(url: str) -> None:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        monkeypatch.setattr(celery_app.conf, "broker_url", url)

    return use


@pytest.mark.services
def test_broker_check_is_up_against_the_real_rabbitmq(real_broker):
    real_broker(require_service("rabbitmq"))

    result = health.check_broker()

    assert result == {"backend": "amqp"}


def test_broker_check_fails_quickly_when_nothing_listens(real_broker):
    real_broker(CLOSED_BROKER_URL)

    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - kombu raises its own or the socket's error, either is "down"
        health.check_broker()

    assert time.monotonic() - started < 10


@pytest.mark.django_db
def test_health_reports_the_broker_down_as_degraded_quickly(anon_client, real_broker, settings):
    settings.HEALTH_REQUIRED_CHECKS = ["database"]
    real_broker(CLOSED_BROKER_URL)

    started = time.monotonic()
    response = anon_client.get(HEALTH_URL)

    assert time.monotonic() - started < 10
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["broker"]["required"] is False
