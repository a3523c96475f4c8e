"""The analytics consumer: counts new recommendations per definition and day."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from recommendations.models import RecommendationDailyCount, RecommendationEvent


class AnalyticsConsumer:
    """Adds one to the day's count of the event's recommendation (in the delivery's transaction: counted once)."""

    name = "analytics"
    event_types = frozenset({RecommendationEvent.TYPE_CREATED})
    at_most_once = False

    def handle(self, event: RecommendationEvent) -> None:
        count_recommendation(event=event)

    def handle_batch(self, events: list[RecommendationEvent]) -> None:
        count_recommendations(events=events)


def count_recommendation(*, event: RecommendationEvent) -> None:
    """Add one to the analytics row of the event's recommendation and day (created when missing)."""
    count_recommendations(events=[event])


def count_recommendations(*, events: list[RecommendationEvent]) -> None:
    """Add each event to the analytics row of its recommendation and day: one UPDATE per row, rows in order.

    In order, so that two workers counting batches that share rows queue for them instead of deadlocking.
    """
    rows: dict[tuple[str, date], tuple[str, int]] = {}
    for event in events:
        key = (event.recommendation_id, timezone.localdate(event.created_at))
        name, count = rows.get(key, (event.payload.get("recommendation_name", event.recommendation_id), 0))
        rows[key] = (name, count + 1)
    for (recommendation_id, day), (name, count) in sorted(rows.items()):
        row = RecommendationDailyCount.objects.filter(recommendation_id=recommendation_id, day=day)
        if row.update(count=F("count") + count):
            continue
        try:
            with transaction.atomic():
                RecommendationDailyCount.objects.create(
                    recommendation_id=recommendation_id, name=name, day=day, count=count
                )
        except IntegrityError:  # another worker created the row first
            row.update(count=F("count") + count)
