"""The impact of a rule-set version: what activating it would change across the current population.

Set-wise: every patient's snapshot is read in one streamed query (`population_snapshots`), and the pure engine
runs in memory twice per snapshot, once with the active version and once with the candidate. Nothing is
written. A recommendation "would be added" when the candidate fires and the active version does not; it
"would no longer be made" when the active version fires and the candidate does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from recommendations.definitions import STANDARD_BY_RULE
from recommendations.engine import RULES
from recommendations.models import Recommendation, RuleSet
from recommendations.selectors import population_snapshots
from recommendations.services.evaluation import get_engine
from recommendations.services.rule_sets import active_rule_set

DEFAULT_SAMPLE_SIZE = 10


@dataclass
class Change:
    """How many patients a change touches, with a sample of their ids (the first ones by id)."""

    count: int = 0
    sample: list[str] = field(default_factory=list)

    def add(self, patient_id: str, sample_size: int) -> None:
        self.count += 1
        if len(self.sample) < sample_size:
            self.sample.append(patient_id)


@dataclass
class RecommendationImpact:
    """The effect of a version on one recommendation."""

    recommendation: str | None
    name: str
    rule: str
    would_add: Change = field(default_factory=Change)
    would_no_longer_make: Change = field(default_factory=Change)
    unchanged: int = 0


@dataclass(frozen=True)
class RuleSetImpact:
    version: int
    compared_with: int
    evaluated_at: datetime
    patients: int
    recommendations: list[RecommendationImpact]


def rule_set_impact(
    *, rule_set: RuleSet, at: datetime | None = None, sample_size: int = DEFAULT_SAMPLE_SIZE
) -> RuleSetImpact:
    """Compare `rule_set` with the active version over every patient, counting per recommendation."""
    at = at or timezone.now()
    active = active_rule_set()
    candidate_engine, active_engine = get_engine(rule_set), get_engine(active)
    definitions = {definition.rule: definition for definition in Recommendation.objects.filter(rule__in=list(RULES))}
    impacts = {}
    for rule in RULES.values():
        definition = definitions.get(rule.key)
        standard = STANDARD_BY_RULE.get(rule.key)
        impacts[rule.key] = RecommendationImpact(
            recommendation=definition.pk if definition else (standard.id if standard else None),
            name=definition.name if definition else rule.recommendation_name,
            rule=rule.key,
        )
    patients = 0
    for snapshot in population_snapshots():
        patients += 1
        candidate = {finding.rule for finding in candidate_engine.evaluate(snapshot, at=at)}
        current = {finding.rule for finding in active_engine.evaluate(snapshot, at=at)}
        for rule in candidate - current:
            impacts[rule].would_add.add(snapshot.patient_id, sample_size)
        for rule in current - candidate:
            impacts[rule].would_no_longer_make.add(snapshot.patient_id, sample_size)
        for rule in candidate & current:
            impacts[rule].unchanged += 1
    return RuleSetImpact(
        version=rule_set.version,
        compared_with=active.version,
        evaluated_at=at,
        patients=patients,
        recommendations=list(impacts.values()),
    )
