"""The analytics consumer: counts new recommendations per definition and day."""

from __future__ import annotations

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


def count_recommendation(*, event: RecommendationEvent) -> None:
    """Add one to the analytics row of the event's recommendation and day (created when missing)."""
    day = timezone.localdate(event.created_at)
    row = RecommendationDailyCount.objects.filter(recommendation_id=event.recommendation_id, day=day)
    if row.update(count=F("count") + 1):
        return
    try:
        with transaction.atomic():
            RecommendationDailyCount.objects.create(
                recommendation_id=event.recommendation_id,
                name=event.payload.get("recommendation_name", event.recommendation_id),
                day=day,
                count=1,
            )
    except IntegrityError:  # another worker created the row first
        row.update(count=F("count") + 1)
