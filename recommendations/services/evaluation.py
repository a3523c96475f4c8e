"""Evaluating a patient: run the engine on a snapshot of the patient's data and record each new finding."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from patients.models import Patient
from recommendations.definitions import STANDARD_BY_RULE
from recommendations.engine import Engine, EngineConfig, Finding
from recommendations.models import (
    PatientRecommendation,
    Recommendation,
    RecommendationEvent,
    RecommendationSource,
    RecommendationStatus,
)
from recommendations.selectors import patient_snapshot
from recommendations.services.outbox import publish_pending_events, record_recommendation

logger = logging.getLogger(__name__)

NOTHING_TO_RECOMMEND = "Nothing to recommend"


def get_engine() -> Engine:
    """The engine named by `RECOMMENDATION_ENGINE`, configured from the threshold settings."""
    engine_class = import_string(settings.RECOMMENDATION_ENGINE)
    config = EngineConfig.from_values(
        physical_therapy_min_age=settings.PHYSICAL_THERAPY_MIN_AGE,
        weight_management_min_bmi=settings.WEIGHT_MANAGEMENT_MIN_BMI,
        rehab_departments=settings.ADMISSIBLE_DEPARTMENTS_FOR_REHAB,
        rehab_window_days=settings.REHAB_WINDOW_DAYS,
    )
    return engine_class(config)


@dataclass(frozen=True)
class EvaluatedRecommendation:
    """One finding of an evaluation and what ClinRec recorded for it."""

    recommendation: str
    name: str
    rule: str
    reason: str
    patient_recommendation: int
    new: bool
    event: int | None


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one patient at one instant."""

    patient: str
    evaluated_at: datetime
    recommendations: list[EvaluatedRecommendation] = field(default_factory=list)

    @property
    def message(self) -> str | None:
        return None if self.recommendations else NOTHING_TO_RECOMMEND


def definitions_for_rules(rules: set[str]) -> dict[str, Recommendation]:
    """The definition of each rule that has one.

    A standard rule without a definition gets its standard one, so a fresh database can evaluate at once;
    but if an administrator detached the rule from that definition (its id is taken, its `rule` cleared), or
    the engine names a rule no definition carries, the rule is switched off rather than guessed at.
    """
    found = {definition.rule: definition for definition in Recommendation.objects.filter(rule__in=rules)}
    for rule in rules - found.keys():
        standard = STANDARD_BY_RULE.get(rule)
        if standard is None or Recommendation.objects.filter(pk=standard.id).exists():
            logger.warning("No recommendation definition carries rule %r: its findings are not recorded.", rule)
            continue
        found[rule], _ = Recommendation.objects.get_or_create(
            rule=rule, defaults={"id": standard.id, "name": standard.name, "description": standard.description}
        )
    return found


@transaction.atomic
def evaluate_patient(*, patient_id: str, at: datetime | None = None) -> Evaluation:
    """Run the engine on the patient's current data and record each new recommendation with its event.

    The patient row is locked for the evaluation, so concurrent evaluations of one patient queue up and
    never duplicate a recommendation (a partial unique constraint backs this where locks are not available).
    Raises `Patient.DoesNotExist` for an unknown patient.
    """
    at = at or timezone.now()
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    findings = get_engine().evaluate(patient_snapshot(patient=patient), at=at)
    if not findings:
        return Evaluation(patient=patient.pk, evaluated_at=at)

    definitions = definitions_for_rules({finding.rule for finding in findings})
    active = {
        link.recommendation_id: link
        for link in PatientRecommendation.objects.filter(
            patient=patient,
            status=RecommendationStatus.ACTIVE,
            recommendation__in=[definition.pk for definition in definitions.values()],
        )
    }
    outcomes = []
    new_event_ids = []
    for finding in findings:
        definition = definitions.get(finding.rule)
        if definition is None:
            continue
        existing = active.get(definition.pk)
        if existing is not None:
            outcomes.append(_outcome(finding, definition, existing, event=None))
            continue
        link, event = record_recommendation(
            patient=patient,
            recommendation=definition,
            source=RecommendationSource.RULE,
            reason=finding.reason,
            at=at,
            publish=False,
        )
        new_event_ids.append(event.pk)
        outcomes.append(_outcome(finding, definition, link, event=event))
    if new_event_ids:
        # One publish for the whole evaluation: with the broker down it gives up after the first failed
        # attempt (one connection timeout in the request), instead of one attempt per recommendation.
        transaction.on_commit(partial(publish_pending_events, event_ids=new_event_ids))
    return Evaluation(patient=patient.pk, evaluated_at=at, recommendations=outcomes)


def _outcome(
    finding: Finding, definition: Recommendation, link: PatientRecommendation, *, event: RecommendationEvent | None
) -> EvaluatedRecommendation:
    return EvaluatedRecommendation(
        recommendation=definition.pk,
        name=definition.name,
        rule=finding.rule,
        reason=finding.reason,
        patient_recommendation=link.pk,
        new=event is not None,
        event=event.pk if event is not None else None,
    )
