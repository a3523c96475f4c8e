"""A circuit breaker for Redis: after one failure Redis is skipped for a while, then tried again once.

A dead Redis refuses at once, but a hung one (a frozen process, a black-holed link) answers nothing until the
socket timeout; paid on every cache call that is seconds per request. The breaker pays one short timeout
(REDIS_SOCKET_TIMEOUT), then makes every call of this process fail at once for CACHE_CIRCUIT_OPEN_SECONDS,
after which a single call tries Redis again (half-open): success closes the circuit, failure opens it for
another interval. Each opening logs one WARNING and the recovery one INFO, instead of a traceback per call.

It is django-redis's REDIS_CLIENT_CLASS (see CACHES in clinrec/settings.py), so every use of Django's cache goes
through it; django-redis's IGNORE_EXCEPTIONS then turns the refusal into a cache miss. There is one breaker per
Redis server and process, shared by its threads. The health check probes Redis itself inside
`bypass_circuit_breaker()`, so it reports what Redis does now, and a successful probe closes the circuit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import redis
from django.conf import settings
from redis.client import Pipeline

logger = logging.getLogger(__name__)

# Redis did not answer in time or at all (a server still loading its dump raises BusyLoadingError, a
# ConnectionError). A ResponseError is an answer: Redis works.
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)

_bypass: ContextVar[bool] = ContextVar("redis_circuit_bypass", default=False)


class CircuitOpenError(redis.exceptions.ConnectionError):
    """Redis is being skipped: it failed recently and the retry time has not come."""


class CircuitBreaker:
    """The state of one Redis server as seen by this process: closed (use it), open (skip it) or half-open
    (one call is trying it)."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = self.CLOSED
        self.retry_at = 0.0
        self.failures = 0  # calls that reached for Redis and failed
        self.skipped = 0  # calls refused at once while open
        self._lock = threading.Lock()

    @staticmethod
    def open_seconds() -> float:
        return float(settings.CACHE_CIRCUIT_OPEN_SECONDS)

    def allow(self) -> bool:
        """May this call reach for Redis? While open, no; once the interval is over, yes for exactly one call."""
        if _bypass.get():
            return True
        with self._lock:
            if self.state == self.CLOSED:
                return True
            now = time.monotonic()
            if now < self.retry_at:
                self.skipped += 1
                return False
            # Half-open: this call is the trial; the others keep skipping until it ends or another interval passes.
            self.state = self.HALF_OPEN
            self.retry_at = now + self.open_seconds()
            return True

    def succeeded(self) -> None:
        if self.state == self.CLOSED:
            return  # the common path: no lock
        with self._lock:
            if self.state != self.CLOSED:
                self.state = self.CLOSED
                logger.info("Redis reachable again at %s; caching resumed.", self.name)

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.state == self.OPEN:
                return  # another thread (or the health probe) already opened it for this interval
            self.state = self.OPEN
            self.retry_at = time.monotonic() + self.open_seconds()
            logger.warning(
                "Redis unreachable at %s (%s: %s); serving from the database; next try in %g s.",
                self.name,
                type(error).__name__,
                error,
                self.open_seconds(),
            )

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run one Redis call under the breaker: refused at once while open, its outcome recorded."""
        if not self.allow():
            raise CircuitOpenError(f"Redis at {self.name} skipped: it failed recently (circuit open).")
        try:
            yield
        except UNAVAILABLE as error:
            self.failed(error)
            raise
        except redis.exceptions.RedisError:
            self.succeeded()  # an error reply (a wrong type, a read-only replica) is still Redis answering
            raise
        self.succeeded()


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(pool: redis.ConnectionPool) -> CircuitBreaker:
    """The breaker of the server a connection pool talks to (never names the password)."""
    kwargs = pool.connection_kwargs
    name = kwargs.get("path") or f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    with _breakers_lock:
        return _breakers.setdefault(name, CircuitBreaker(name))


def reset_circuit_breakers() -> None:
    """Forget every server's state (tests)."""
    with _breakers_lock:
        _breakers.clear()


@contextmanager
def bypass_circuit_breaker() -> Iterator[None]:
    """Reach for Redis even while the circuit is open (the health check); outcomes are still recorded."""
    token = _bypass.set(True)
    try:
        yield
    finally:
        _bypass.reset(token)


class CircuitBreakerRedis(redis.Redis):
    """redis-py's client with every command and pipeline run under the server's circuit breaker."""

    def execute_command(self, *args, **options):
        with breaker_for(self.connection_pool).guard():
            return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint=None) -> Pipeline:
        return CircuitBreakerPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class CircuitBreakerPipeline(Pipeline):
    """A pipeline sent under the circuit breaker (django-redis uses them for set_many)."""

    def execute(self, raise_on_error: bool = True):
        with breaker_for(self.connection_pool).guard():
            return super().execute(raise_on_error)
