"""Fixtures shared by every app's tests: API clients per role, and access to the machine's real services.

Tests that need PostgreSQL, Redis or RabbitMQ use `require_service("redis")` (or the fixtures built on it):
on a laptop without the service they skip with the reason; with CLINREC_REQUIRE_SERVICES=1 (CI) they fail.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from security.roles import ADMIN, CLINICIAN, VIEWER

SERVICE_URLS = {
    "postgres": os.environ.get("CLINREC_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"),
    "redis": os.environ.get("CLINREC_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
    "rabbitmq": os.environ.get("CLINREC_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}


def services_required() -> bool:
    return os.environ.get("CLINREC_REQUIRE_SERVICES", "") in {"1", "true", "yes"}


def service_reachable(url: str, timeout: float = 1.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str) -> str:
    """The URL of a real service for this test; skip (or fail in CI) when it is unreachable."""
    url = SERVICE_URLS[name]
    if not service_reachable(url):
        message = f"{name} is not reachable at {url}"
        if services_required():
            pytest.fail(f"{message}, and CLINREC_REQUIRE_SERVICES=1 requires it.")
        pytest.skip(f"{message} (set CLINREC_REQUIRE_SERVICES=1 to make this a failure).")
    return url


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: the local-memory cache (and the read cache's memory of it) lives as
    long as the process."""
    from clinrec.cache import clear_read_cache

    clear_read_cache()
    yield
    clear_read_cache()


def make_user(username: str, role: str | None, **extra):
    user = get_user_model().objects.create_user(username=username, password="Str0ng-pass!word", **extra)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return user


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def viewer_client(db) -> APIClient:
    return client_for(make_user("viewer-user", VIEWER))


@pytest.fixture
def clinician_client(db) -> APIClient:
    return client_for(make_user("clinician-user", CLINICIAN))


@pytest.fixture
def admin_client_jwt(db) -> APIClient:
    """A user in the admin role (not a superuser): proves the role alone grants everything."""
    return client_for(make_user("admin-user", ADMIN))


@pytest.fixture
def no_role_client(db) -> APIClient:
    return client_for(make_user("nobody", None))


# --- Fault injection: a TCP proxy between ClinRec and a real service (issue 7) -------------------------------------


@pytest.fixture
def tcp_proxy():
    """Start a `TcpProxy` in front of a service URL: `tcp_proxy("amqp://guest:guest@127.0.0.1:5672//")`.

    The test breaks the link through it (refuse, black_hole, reset, latency, heal); every proxy it started is
    stopped after the test, with its threads and sockets.
    """
    from clinrec.testing.tcp_proxy import TcpProxy

    started: list[TcpProxy] = []

    def start(url: str) -> TcpProxy:
        parsed = urlparse(url)
        proxy = TcpProxy((parsed.hostname or "127.0.0.1", parsed.port)).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


# --- workspace: the shared real-browser fixtures (clinrec/tests/browser.py) ------------------------------
pytest_plugins = ["clinrec.tests.browser"]


# --- perf (issue 12): each test starts without the version tokens its connection remembered ---------------------


@pytest.fixture(autouse=True)
def _forget_cache_tokens():
    """The connection outlives a test's rolled-back transaction; what it remembered of the tokens must not."""
    from clinrec.cache import forget_tokens

    forget_tokens()
    yield
