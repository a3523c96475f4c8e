"""Evaluating a patient: run the engine on a snapshot of the patient's data and record each new finding.

`evaluate_patient` uses the active rule set and records each new recommendation with its provenance and event;
`preview_patient` (a dry run) answers the same question, against any rule-set version, and writes nothing.
"""

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
from recommendations.engine import Engine, Finding
from recommendations.models import (
    PatientRecommendation,
    Recommendation,
    RecommendationEvent,
    RecommendationSource,
    RecommendationStatus,
    RuleSet,
)
from recommendations.selectors import patient_snapshot
from recommendations.services.outbox import announce_recommendation, publish_pending_events
from recommendations.services.provenance import rule_provenance
from recommendations.services.rule_sets import active_rule_set, rule_set_config

logger = logging.getLogger(__name__)

NOTHING_TO_RECOMMEND = "Nothing to recommend"


def get_engine(rule_set: RuleSet | None = None) -> Engine:
    """The engine named by `RECOMMENDATION_ENGINE`, configured with a rule-set version (default: the active one)."""
    engine_class = import_string(settings.RECOMMENDATION_ENGINE)
    return engine_class(rule_set_config(rule_set or active_rule_set()))


@dataclass(frozen=True)
class EvaluatedRecommendation:
    """One finding of an evaluation and what ClinRec recorded for it."""

    recommendation: str
    name: str
    rule: str
    reason: str
    patient_recommendation: int | None  # null in a dry run when nothing is recorded yet
    new: bool
    event: int | None
    provenance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one patient at one instant."""

    patient: str
    evaluated_at: datetime
    recommendations: list[EvaluatedRecommendation] = field(default_factory=list)
    dry_run: bool = False
    rule_set: int | None = None

    @property
    def message(self) -> str | None:
        return None if self.recommendations else NOTHING_TO_RECOMMEND


def definitions_for_rules(rules: set[str], *, create: bool = True) -> dict[str, Recommendation]:
    """The definition of each rule that has one.

    A standard rule without a definition gets its standard one, so a fresh database can evaluate at once;
    but if an administrator detached the rule from that definition (its id is taken, its `rule` cleared), or
    the engine names a rule no definition carries, the rule is switched off rather than guessed at. With
    `create=False` (a dry run) the standard definition that would be created is returned unsaved.
    """
    found = {definition.rule: definition for definition in Recommendation.objects.filter(rule__in=rules)}
    for rule in rules - found.keys():
        standard = STANDARD_BY_RULE.get(rule)
        holder = Recommendation.objects.filter(pk=standard.id).first() if standard else None
        if holder is not None and holder.rule == rule:  # a concurrent first evaluation created it meanwhile
            found[rule] = holder
            continue
        if standard is None or holder is not None:
            logger.warning("No recommendation definition carries rule %r: its findings are not recorded.", rule)
            continue
        if not create:
            found[rule] = Recommendation(
                id=standard.id, rule=rule, name=standard.name, description=standard.description
            )
            continue
        found[rule], _ = Recommendation.objects.get_or_create(
            rule=rule, defaults={"id": standard.id, "name": standard.name, "description": standard.description}
        )
    return found


@transaction.atomic
def evaluate_patient(*, patient_id: str, at: datetime | None = None) -> Evaluation:
    """Run the engine (active rule set) on the patient's data; record each new recommendation with its event.

    The patient row is locked for the evaluation, so concurrent evaluations of one patient queue up and
    never duplicate a recommendation (a partial unique constraint backs this where locks are not available).
    Each new recommendation stores its provenance: rule, rule-set version, facts and engine version.
    Raises `Patient.DoesNotExist` for an unknown patient.
    """
    at = at or timezone.now()
    patient = Patient.objects.select_for_update().get(pk=patient_id)
    planned = _plan(patient, active_rule_set(), at, create_definitions=True)
    outcomes = []
    new_event_ids = []
    for item in planned:
        if item.active_link is not None:
            outcomes.append(_outcome(item, item.active_link, event=None))
            continue
        link = PatientRecommendation.objects.create(
            patient=patient,
            recommendation=item.definition,
            recommended_at=at,
            source=RecommendationSource.RULE,
            reason=item.finding.reason,
            provenance=item.provenance,
        )
        event = announce_recommendation(link=link, publish=False)
        new_event_ids.append(event.pk)
        outcomes.append(_outcome(item, link, event=event))
    if new_event_ids:
        # One publish for the whole evaluation: with the broker down it gives up after the first failed
        # attempt (one connection timeout in the request), instead of one attempt per recommendation.
        transaction.on_commit(partial(publish_pending_events, event_ids=new_event_ids))
    return Evaluation(patient=patient.pk, evaluated_at=at, recommendations=outcomes)


def preview_patient(*, patient_id: str, rule_set: RuleSet | None = None, at: datetime | None = None) -> Evaluation:
    """A dry run: what `evaluate_patient` would recommend now, against `rule_set` (default: the active one).

    Writes nothing and publishes nothing. A recommendation already active is reported with its link and
    `new: false`; one that would be made has no link yet (`patient_recommendation: null`, `new: true`).
    Raises `Patient.DoesNotExist` for an unknown patient.
    """
    at = at or timezone.now()
    patient = Patient.objects.get(pk=patient_id)
    rule_set = rule_set or active_rule_set()
    planned = _plan(patient, rule_set, at, create_definitions=False)
    return Evaluation(
        patient=patient.pk,
        evaluated_at=at,
        recommendations=[_outcome(item, item.active_link, event=None) for item in planned],
        dry_run=True,
        rule_set=rule_set.version,
    )


@dataclass(frozen=True)
class _Planned:
    """A finding mapped onto its definition, with its provenance and the patient's active link, if any."""

    finding: Finding
    definition: Recommendation
    provenance: dict
    active_link: PatientRecommendation | None


def _plan(patient: Patient, rule_set: RuleSet, at: datetime, *, create_definitions: bool) -> list[_Planned]:
    """What the engine finds for `patient` with `rule_set`, for the rules that have a definition."""
    engine = get_engine(rule_set)
    findings = engine.evaluate(patient_snapshot(patient=patient), at=at)
    if not findings:
        return []
    definitions = definitions_for_rules({finding.rule for finding in findings}, create=create_definitions)
    active = _active_links(patient, definitions)
    return [
        _Planned(
            finding=finding,
            definition=definitions[finding.rule],
            provenance=rule_provenance(finding=finding, rule_set=rule_set.version, engine=engine),
            active_link=active.get(definitions[finding.rule].pk),
        )
        for finding in findings
        if finding.rule in definitions
    ]


def _active_links(patient: Patient, definitions: dict[str, Recommendation]) -> dict[str, PatientRecommendation]:
    return {
        link.recommendation_id: link
        for link in PatientRecommendation.objects.filter(
            patient=patient,
            status=RecommendationStatus.ACTIVE,
            recommendation__in=[definition.pk for definition in definitions.values()],
        )
    }


def _outcome(
    item: _Planned, link: PatientRecommendation | None, *, event: RecommendationEvent | None
) -> EvaluatedRecommendation:
    return EvaluatedRecommendation(
        recommendation=item.definition.pk,
        name=item.definition.name,
        rule=item.finding.rule,
        reason=item.finding.reason,
        patient_recommendation=link.pk if link is not None else None,
        new=link is None or event is not None,
        event=event.pk if event is not None else None,
        provenance=item.provenance,
    )
