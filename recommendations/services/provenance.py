"""Provenance: the record of why a patient recommendation exists, stored with it and never rewritten.

- made by the engine: `{"source": "rule", "rule", "rule_set", "facts", "engine_version"}` (the rule key, the
  rule-set version whose parameters it used, the facts it read, and the engine that ran it);
- recorded by a person: `{"source": "manual", "recorded_by", "recorded_at", "via"}` (`via`: api, admin, cds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from patients.models import Patient
from recommendations.engine import Engine, Finding
from recommendations.models import (
    PatientRecommendation,
    Recommendation,
    RecommendationEvent,
    RecommendationSource,
    RecommendationStatus,
)
from recommendations.services.outbox import announce_recommendation


def engine_version(engine: Engine) -> str:
    """The engine's name and version, e.g. "RuleEngine/2"."""
    return f"{type(engine).__name__}/{getattr(engine, 'version', 'unversioned')}"


def rule_provenance(*, finding: Finding, rule_set: int | None, engine: Engine) -> dict[str, Any]:
    return {
        "source": RecommendationSource.RULE.value,
        "rule": finding.rule,
        "rule_set": rule_set,
        "facts": dict(finding.facts),
        "engine_version": engine_version(engine),
    }


def manual_provenance(*, recorded_by: Any, via: str, at: datetime | None = None) -> dict[str, Any]:
    """Who recorded a recommendation by hand (their username; null for an anonymous system call) and where."""
    if getattr(recorded_by, "pk", None):
        username = recorded_by.get_username()
    else:  # not a ClinRec user: an EHR behind a CDS Hooks JWT names itself ("ehr:<issuer>"), the system nothing
        username = getattr(recorded_by, "username", None) or None
    return {
        "source": RecommendationSource.MANUAL.value,
        "recorded_by": username,
        "recorded_at": (at or timezone.now()).isoformat(),
        "via": via,
    }


@transaction.atomic
def record_manual_recommendation(
    *,
    patient: Patient,
    recommendation: Recommendation,
    recorded_by: Any,
    via: str,
    source: str = RecommendationSource.MANUAL,
    reason: str = "",
    at: datetime | None = None,
    status: str = RecommendationStatus.ACTIVE,
) -> tuple[PatientRecommendation, RecommendationEvent]:
    """A recommendation made by a person, with its provenance, announced by an event like the engine's."""
    at = at or timezone.now()
    link = PatientRecommendation.objects.create(
        patient=patient,
        recommendation=recommendation,
        recommended_at=at,
        source=source,
        reason=reason,
        status=status,
        provenance=manual_provenance(recorded_by=recorded_by, via=via),
    )
    return link, announce_recommendation(link=link)
