"""Two clients racing each other through the real API stack, for the lost-update tests of every resource.

Each client runs in a thread of its own, with its own database connection (Django's connections are per
thread), so the two requests of a round are two real concurrent transactions. A barrier releases both
requests of a round together; the rounds run one after another on different rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connection

from conftest import client_for

JOIN_TIMEOUT_SECONDS = 120

Body = Callable[[int], dict]
Headers = Callable[[int], dict[str, str]]


def no_headers(_round: int) -> dict[str, str]:
    return {}


@dataclass
class RaceOutcome:
    """What each racer got back: one status code and body per round, in round order."""

    statuses: list[list[int]] = field(default_factory=lambda: [[], []])
    bodies: list[list[dict]] = field(default_factory=lambda: [[], []])


def patch_in_pairs(
    *, user, urls: Sequence[str], bodies: tuple[Body, Body], headers: tuple[Headers, Headers] = (no_headers, no_headers)
) -> RaceOutcome:
    """For each url (a round), PATCH it from two threads at once: `bodies[0](round)` and `bodies[1](round)`.

    `headers[racer](round)` are extra request headers, e.g. `{"If-Match": ...}`.
    """
    barrier = threading.Barrier(2)
    outcome = RaceOutcome()
    errors: list[BaseException] = []

    def race(racer: int) -> None:
        client = client_for(user)
        try:
            for round_number, url in enumerate(urls):
                barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
                response = client.patch(
                    url, bodies[racer](round_number), format="json", headers=headers[racer](round_number)
                )
                outcome.statuses[racer].append(response.status_code)
                outcome.bodies[racer].append(response.json())
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread below
            errors.append(exc)
            barrier.abort()  # the other racer must not wait for a partner that is gone
        finally:
            connection.close()  # this thread's own connection; the test database is dropped at the end

    threads = [threading.Thread(target=race, args=(racer,)) for racer in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a racing client is still running"
    if errors:
        raise errors[0]
    return outcome
