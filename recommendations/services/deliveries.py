"""Running one delivery (one consumer, one event), recording its failures, and requeueing failed ones.

Ordinary consumers run inside the transaction that locks their delivery row and marks it delivered: exactly
once for what they write to the database, at least once for what they send (a crash before the commit sends
again, with the same message control id). At-most-once consumers (the e-mail) are claimed first; see
`recommendations.consumers` for the trade-off.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from recommendations.consumers import EventConsumer, NothingDone, PermanentFailure, enabled_consumers
from recommendations.models import Delivery, DeliveryStatus, EventStatus, RecommendationEvent

logger = logging.getLogger(__name__)

OUTCOME_UNKNOWN = (
    "Outcome unknown: the {consumer} delivery was claimed at {claimed_at:%Y-%m-%d %H:%M:%S} UTC and never "
    "confirmed (the worker stopped between acting and recording it); not done again, at most once. Check the "
    "receiving side; requeue it only to do it again."
)


def deliver_event(*, delivery_id: int, settle: bool = True) -> bool:
    """Run one pending delivery; returns False if there was nothing to do. Raises if the consumer failed.

    With `settle=False` the event's status is left for the caller to settle (once for all its deliveries).
    """
    with transaction.atomic():
        delivery = _locked_pending(delivery_id)
        if delivery is None:
            return False
        consumer = enabled_consumers().get(delivery.consumer)
        if consumer is None:
            _fail(delivery, error=f"Consumer {delivery.consumer!r} is not enabled (EVENT_CONSUMERS).")
            return False
        if not consumer.at_most_once:  # done and recorded in this one transaction
            consumer.handle(delivery.event)
            _mark_delivered(delivery, settle=settle)
            return True
        if delivery.claimed_at is not None:
            error = OUTCOME_UNKNOWN.format(consumer=consumer.name, claimed_at=delivery.claimed_at)
            logger.error("Delivery %s: %s", delivery_id, error)
            _fail(delivery, error=error)
            return False
        Delivery.objects.filter(pk=delivery_id).update(claimed_at=timezone.now())
    return act_on_claim(delivery_id=delivery_id, consumer=consumer, event=delivery.event, settle=settle)


def act_on_claim(*, delivery_id: int, consumer: EventConsumer, event: RecommendationEvent, settle: bool = True) -> bool:
    """Run an at-most-once consumer whose claim on the delivery is committed, then record it delivered.

    Raises if the consumer failed: NothingDone releases the claim first (nothing went out), anything else keeps it.
    """
    # At most once: the claim is committed before the consumer acts, and kept unless it did nothing.
    try:
        consumer.handle(event)
    except NothingDone:
        Delivery.objects.filter(pk=delivery_id).update(claimed_at=None)  # nothing went out: free to try again
        raise
    with transaction.atomic():
        delivery = _locked_pending(delivery_id)
        if delivery is not None:
            _mark_delivered(delivery, settle=settle)
    return True


def _locked_pending(delivery_id: int) -> Delivery | None:
    delivery = Delivery.objects.select_for_update().select_related("event").filter(pk=delivery_id).first()
    return delivery if delivery is not None and delivery.status == DeliveryStatus.PENDING else None


# Deliveries and events change with `update()`: no read cache shows them (the events endpoint is not cached),
# so their writes, several per event, need not replace the cache's version tokens (clinrec.cache).


def _mark_delivered(delivery: Delivery, *, settle: bool) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
    )
    if settle:
        settle_event(event_id=delivery.event_id)


def attempt_delivery(*, delivery_id: int, settle: bool = True) -> float | None:
    """Run one delivery; if it failed and may be tried again, return in how many seconds (exponential backoff).

    A failure is counted on the delivery with its error; a PermanentFailure, or the attempt past
    EVENT_HANDLER_MAX_RETRIES retries, marks it `failed`. Never raises for the consumer's failure.
    """
    try:
        deliver_event(delivery_id=delivery_id, settle=settle)
    except Exception as exc:  # noqa: BLE001 - whatever the consumer raised is this delivery's failure
        return delivery_failed(delivery_id=delivery_id, exc=exc)
    return None


def act_on_claims(claims: list[tuple[int, EventConsumer, RecommendationEvent]]) -> list[tuple[int, float | None]]:
    """`act_on_claim` for several claimed deliveries (of a batch of events): each consumer acts in turn, then
    those that acted are recorded delivered, and their events settled, in one transaction. Returns the failed
    ones with the seconds until their retry (None: failed for good)."""
    acted: list[tuple[int, int]] = []
    failed: list[tuple[int, float | None]] = []
    for delivery_id, consumer, event in claims:
        try:
            consumer.handle(event)
        except NothingDone as exc:
            Delivery.objects.filter(pk=delivery_id).update(claimed_at=None)  # nothing went out: free to try again
            failed.append((delivery_id, delivery_failed(delivery_id=delivery_id, exc=exc)))
        except Exception as exc:  # noqa: BLE001 - whatever the consumer raised is this delivery's failure
            failed.append((delivery_id, delivery_failed(delivery_id=delivery_id, exc=exc)))
        else:
            acted.append((delivery_id, event.pk))
    if acted:
        try:
            _record_delivered(acted)
        except Exception as exc:  # noqa: BLE001 - not recorded: each is retried, and finds its claim (at most once)
            failed += [(pk, delivery_failed(delivery_id=pk, exc=exc)) for pk, _event in acted]
    return failed


@transaction.atomic
def _record_delivered(deliveries: list[tuple[int, int]]) -> None:
    event_ids = sorted({event_id for _delivery, event_id in deliveries})
    # Events first, then their deliveries: the order the event's own transaction takes its locks in.
    list(RecommendationEvent.objects.select_for_update().filter(pk__in=event_ids).order_by("pk").values_list("pk"))
    Delivery.objects.filter(pk__in=[pk for pk, _event in deliveries], status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
    )
    settle_events(event_ids=event_ids)


def delivery_failed(*, delivery_id: int, exc: BaseException) -> float | None:
    """Record what a consumer raised on its delivery; returns in how many seconds to try again (None: never)."""
    attempts = record_delivery_failure(
        delivery_id=delivery_id, error=str(exc) or repr(exc), permanent=isinstance(exc, PermanentFailure)
    )
    if attempts is None:
        logger.error("Delivery %s failed for good: %r", delivery_id, exc)
        return None
    logger.warning("Delivery %s failed (attempt %s), retried: %r", delivery_id, attempts, exc)
    return float(min(2 ** (attempts - 1), 300))


def record_delivery_failure(*, delivery_id: int, error: str, permanent: bool = False) -> int | None:
    """Count a failed attempt and keep its error; returns the attempts so far, or None once the delivery is
    `failed` (a permanent failure, or the retries spent)."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(pk=delivery_id, status=DeliveryStatus.PENDING).first()
        if delivery is None:
            return None
        delivery.attempts += 1
        final = permanent or delivery.attempts > settings.EVENT_HANDLER_MAX_RETRIES
        Delivery.objects.filter(pk=delivery_id).update(
            attempts=delivery.attempts,
            last_error=error[:2000],
            status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
        )
        if final:
            settle_event(event_id=delivery.event_id)
            return None
        return delivery.attempts


def _fail(delivery: Delivery, *, error: str) -> None:
    """Fail a delivery locked by the caller, at once, and settle its event."""
    fail_delivery(delivery_id=delivery.pk, error=error)
    settle_event(event_id=delivery.event_id)


def fail_delivery(*, delivery_id: int, error: str) -> None:
    """Fail a delivery locked by the caller, at once (its event is settled by the caller)."""
    Delivery.objects.filter(pk=delivery_id).update(status=DeliveryStatus.FAILED, last_error=error[:2000])


def settle_event(*, event_id: int) -> None:
    """Set the event's status from its deliveries: `consumed` when all are delivered, `failed` once one failed
    and none is pending; otherwise it stays as it is (published: the relay re-publishes it if it stalls)."""
    settle_events(event_ids=[event_id])


def settle_events(*, event_ids: Iterable[int]) -> None:
    """`settle_event` for several events, in three queries whatever their number (more only for failed ones)."""
    ids = sorted(set(event_ids))
    if not ids:
        return
    open_ids = list(
        RecommendationEvent.objects.select_for_update()
        .filter(pk__in=ids)
        .exclude(status=EventStatus.CONSUMED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not open_ids:
        return
    deliveries: dict[int, list[tuple[str, str, str]]] = {event_id: [] for event_id in open_ids}
    for event_id, consumer, status, error in Delivery.objects.filter(event_id__in=open_ids).values_list(
        "event_id", "consumer", "status", "last_error"
    ):
        deliveries[event_id].append((consumer, status, error))
    consumed = []
    for event_id, rows in deliveries.items():
        statuses = {status for _consumer, status, _error in rows}
        if statuses <= {DeliveryStatus.DELIVERED}:
            consumed.append(event_id)
        elif DeliveryStatus.FAILED in statuses and DeliveryStatus.PENDING not in statuses:
            failed = [f"{consumer}: {error}" for consumer, status, error in rows if status == DeliveryStatus.FAILED]
            RecommendationEvent.objects.filter(pk=event_id).update(
                status=EventStatus.FAILED, last_error="; ".join(failed)[:2000]
            )
    if consumed:
        RecommendationEvent.objects.filter(pk__in=consumed).update(
            status=EventStatus.CONSUMED, consumed_at=timezone.now(), last_error=""
        )


@transaction.atomic
def requeue_deliveries(
    *, consumer: str | None = None, status: str = DeliveryStatus.FAILED, delivery_ids: list[int] | None = None
) -> int:
    """Put deliveries (failed ones by default) back to pending and run them again; returns how many.

    A requeued e-mail whose outcome was unknown is sent again: requeueing is the operator's decision to.
    Their events go back to `published` (no longer failed) and the deliveries are sent after the commit.
    """
    from recommendations import tasks

    deliveries = Delivery.objects.select_for_update().filter(status=status)
    if consumer:
        deliveries = deliveries.filter(consumer=consumer)
    if delivery_ids is not None:
        deliveries = deliveries.filter(pk__in=delivery_ids)
    rows = list(deliveries.values_list("pk", "event_id"))
    if not rows:
        return 0
    ids = [pk for pk, _event in rows]
    Delivery.objects.filter(pk__in=ids).update(status=DeliveryStatus.PENDING, claimed_at=None, attempts=0)
    RecommendationEvent.objects.filter(Q(pk__in={event for _pk, event in rows}), ~Q(status=EventStatus.PENDING)).update(
        status=EventStatus.PUBLISHED
    )
    for pk in ids:
        transaction.on_commit(partial(tasks.deliver_event_task.apply_async, args=[pk]))
    return len(ids)
