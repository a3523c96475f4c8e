"""Reads with a business meaning for interop: what clinicians did with ClinRec's CDS cards."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, Q

from interop.models import CdsFeedback, FeedbackOutcome, IssuedCard
from recommendations.models import Recommendation

TOP_REASONS = 3


def cds_feedback_counts() -> list[dict[str, Any]]:
    """Per recommendation shown on a card: cards shown, accepted, overridden and the top override reasons."""
    shown = dict(
        IssuedCard.objects.values("recommendation_id").annotate(n=Count("uuid")).values_list("recommendation_id", "n")
    )
    outcomes = (
        CdsFeedback.objects.values("card__recommendation_id")
        .annotate(
            accepted=Count("id", filter=Q(outcome=FeedbackOutcome.ACCEPTED)),
            overridden=Count("id", filter=Q(outcome=FeedbackOutcome.OVERRIDDEN)),
        )
        .order_by()
    )
    by_recommendation = {row["card__recommendation_id"]: row for row in outcomes}
    reasons: dict[str, Counter] = defaultdict(Counter)
    overrides = CdsFeedback.objects.filter(outcome=FeedbackOutcome.OVERRIDDEN).exclude(override_reason_text="")
    for recommendation_id, text in overrides.values_list("card__recommendation_id", "override_reason_text"):
        reasons[recommendation_id][text] += 1
    names = dict(Recommendation.objects.filter(pk__in=shown).values_list("pk", "name"))
    return [
        {
            "recommendation": recommendation_id,
            "name": names.get(recommendation_id, recommendation_id),
            "cards_shown": count,
            "accepted": by_recommendation.get(recommendation_id, {}).get("accepted", 0),
            "overridden": by_recommendation.get(recommendation_id, {}).get("overridden", 0),
            "top_override_reasons": [
                {"reason": text, "count": n} for text, n in reasons[recommendation_id].most_common(TOP_REASONS)
            ],
        }
        for recommendation_id, count in sorted(shown.items())
    ]
