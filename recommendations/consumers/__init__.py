"""Event consumers: each does one thing with a recommendation event (log it, e-mail the care team, count it, send
an HL7 v2 order, push a FHIR ServiceRequest), with its own delivery record and retries.

A consumer is an object with a `name`, the `event_types` it handles, `at_most_once` and `handle(event)`; the
enabled ones are listed by dotted path in `settings.EVENT_CONSUMERS`. `handle` must be safe to run again after a
failure (the delivery is retried): the runner (`recommendations.services.deliveries`) skips a delivered one, and
runs an ordinary consumer inside the transaction that marks it delivered, so a crash before the commit means it
runs again (at least once: a receiver sees the same message control id, or the same conditional PUT).

An `at_most_once` consumer (the e-mail) is claimed first, in a transaction of its own: the claim is committed,
then the side effect happens, then the delivery is marked delivered. If the consumer raises `NothingDone` (the
mail server said no: nothing went out), the claim is released and the delivery retried. If the worker dies between the
claim and the final commit, nobody knows whether the e-mail left: the retry finds the claim and does not send
again; the delivery is marked failed with "outcome unknown", for an operator (requeueing it sends again).
Trade-off chosen: never two e-mails for one event and recipient, at the price of possibly none after a crash.

A consumer may also have `handle_batch(events)`, with the effect of `handle` on each: the worker then calls it
once for the ordinary deliveries of a batch of events (the analytics consumer adds up its counts, and takes its
rows in order), and if it raises, each of those deliveries is retried on its own with `handle`.

Adding a consumer: write one module here (or in another app, as interop does) with a class following
`EventConsumer`, and add its dotted path to EVENT_CONSUMERS in the environment (settings.py reads it).
"""

from __future__ import annotations

from functools import cache
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

from recommendations.models import PatientRecommendation, RecommendationEvent


class NothingDone(Exception):
    """Raised by an at-most-once consumer that failed before acting (e.g. the mail server refused the message):
    its claim is released and the delivery retried. Any other exception leaves the claim: outcome unknown."""


class PermanentFailure(Exception):
    """Raised by a consumer whose receiver refused the event (HL7 AE/AR, an HTTP 4xx): retrying cannot help, so
    the delivery is failed at once with this text (an operator can requeue it once the cause is fixed)."""


@runtime_checkable
class EventConsumer(Protocol):
    """What the delivery runner needs of a consumer."""

    name: str  # unique: the `consumer` of its delivery rows
    event_types: frozenset[str]  # event types it handles; others get no delivery
    at_most_once: bool  # claim before acting; never act twice (see the module docstring)

    def handle(self, event: RecommendationEvent) -> None:
        """Do this consumer's part for one event; raise to have the delivery retried (or failed)."""


def event_link(event: RecommendationEvent) -> PatientRecommendation:
    """The patient recommendation an event is about, with its patient and programme; a permanent failure when it
    no longer exists (sending again would not bring it back)."""
    link = (
        PatientRecommendation.objects.select_related("patient", "recommendation")
        .filter(pk=event.patient_recommendation_id)
        .first()
    )
    if link is None:
        raise PermanentFailure(f"patient recommendation of event {event.pk} no longer exists")
    return link


def enabled_consumers() -> dict[str, EventConsumer]:
    """The consumers named in EVENT_CONSUMERS (dotted paths to classes), by name, in the order listed."""
    return _load(tuple(settings.EVENT_CONSUMERS))


@cache
def _load(paths: tuple[str, ...]) -> dict[str, EventConsumer]:
    consumers: dict[str, EventConsumer] = {}
    for path in paths:
        consumer = import_string(path)()
        if not isinstance(consumer, EventConsumer):
            raise TypeError(f"{path} is not an event consumer (name, event_types, at_most_once, handle).")
        consumers[consumer.name] = consumer
    return consumers
