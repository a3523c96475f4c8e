"""The Redis circuit breaker's states on a clock the test moves: closed, open after a failure, one trial call
once the interval is over (half-open), closed again when the trial succeeds. With a real Redis in
test_cache_faults.py."""

from __future__ import annotations

import logging
import threading

import pytest
import redis

from clinrec import redis_breaker
from clinrec.redis_breaker import CircuitBreaker, CircuitOpenError, bypass_circuit_breaker


@pytest.fixture(autouse=True)
def ten_second_interval(settings):
    settings.CACHE_CIRCUIT_OPEN_SECONDS = 10


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(redis_breaker, "time", fake)
    return fake


def call(breaker: CircuitBreaker, outcome: BaseException | None = None) -> str:
    """One Redis call under the breaker: 'ok', 'failed' or 'skipped'."""
    try:
        with breaker.guard():
            if outcome is not None:
                raise outcome
    except CircuitOpenError:
        return "skipped"
    except redis.exceptions.RedisError:
        return "failed"
    return "ok"


def test_a_failure_opens_the_circuit_and_later_calls_are_skipped(clock):
    breaker = CircuitBreaker("redis:6379")

    assert call(breaker, redis.exceptions.TimeoutError("Timeout reading from socket")) == "failed"
    assert [call(breaker) for _ in range(5)] == ["skipped"] * 5

    assert (breaker.state, breaker.failures, breaker.skipped) == (CircuitBreaker.OPEN, 1, 5)


def test_after_the_interval_one_call_tries_and_success_closes(clock, caplog):
    caplog.set_level(logging.INFO, logger="clinrec.redis_breaker")
    breaker = CircuitBreaker("redis:6379")
    call(breaker, redis.exceptions.ConnectionError("refused"))

    clock.now += 9.9
    assert call(breaker) == "skipped"
    clock.now += 0.1
    assert call(breaker) == "ok"

    assert breaker.state == CircuitBreaker.CLOSED
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert caplog.records[1].getMessage() == "Redis reachable again at redis:6379; caching resumed."


def test_a_failed_trial_opens_for_another_interval_with_one_more_warning(clock, caplog):
    caplog.set_level(logging.INFO, logger="clinrec.redis_breaker")
    breaker = CircuitBreaker("redis:6379")
    call(breaker, redis.exceptions.ConnectionError("refused"))

    clock.now += 10
    assert call(breaker, redis.exceptions.ConnectionError("refused")) == "failed"
    clock.now += 5
    assert call(breaker) == "skipped"

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        warnings
        == ["Redis unreachable at redis:6379 (ConnectionError: refused); serving from the database; next try in 10 s."]
        * 2
    )


def test_half_open_lets_exactly_one_of_many_threads_try(clock):
    breaker = CircuitBreaker("redis:6379")
    call(breaker, redis.exceptions.ConnectionError("refused"))
    clock.now += 10
    trial_started, release = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def slow_trial() -> None:
        with breaker.guard():
            trial_started.set()
            release.wait(5)
        outcomes.append("ok")

    trial = threading.Thread(target=slow_trial)
    trial.start()
    assert trial_started.wait(5)
    others = [call(breaker) for _ in range(3)]  # while the trial is still waiting for Redis
    release.set()
    trial.join()

    assert others == ["skipped"] * 3
    assert outcomes == ["ok"]
    assert breaker.state == CircuitBreaker.CLOSED


def test_an_error_reply_is_redis_answering_not_an_outage(clock):
    breaker = CircuitBreaker("redis:6379")

    assert call(breaker, redis.exceptions.ResponseError("WRONGTYPE")) == "failed"

    assert (breaker.state, breaker.failures) == (CircuitBreaker.CLOSED, 0)


def test_the_health_probe_passes_an_open_circuit_and_its_success_closes_it(clock):
    breaker = CircuitBreaker("redis:6379")
    call(breaker, redis.exceptions.ConnectionError("refused"))

    with bypass_circuit_breaker():
        assert call(breaker) == "ok"

    assert breaker.state == CircuitBreaker.CLOSED
    assert call(breaker) == "ok"
