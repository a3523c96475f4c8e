"""The engine interface the evaluation service depends on, and the default rule-based engine.

The service loads an engine from a dotted path in settings and only relies on the `Engine` protocol, so a
model-based engine can replace `RuleEngine` without touching the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from .config import EngineConfig
from .findings import Finding
from .rules import RULES
from .snapshot import PatientSnapshot


@runtime_checkable
class Engine(Protocol):
    """Anything that turns a patient snapshot at an instant into findings."""

    def evaluate(self, snapshot: PatientSnapshot, *, at: datetime) -> list[Finding]: ...


class RuleEngine:
    """Default engine: the rules of the registry, each with its parameters from the config.

    `version` is quoted in every recommendation's provenance; change it when a rule's logic changes.
    """

    version = "2"

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig()

    def evaluate(self, snapshot: PatientSnapshot, *, at: datetime) -> list[Finding]:
        """Findings of every enabled rule that fires at `at`, in the order of `RULES`; `at` must be timezone-aware."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("evaluation instant `at` must be timezone-aware")
        findings: list[Finding] = []
        for rule in RULES.values():
            if rule.key in self.config.disabled_rules:
                continue
            fired = rule.check(snapshot, at, self.config)
            if fired is not None:
                findings.append(
                    Finding(
                        rule=rule.key,
                        recommendation_name=rule.recommendation_name,
                        reason=fired.reason,
                        facts=fired.facts,
                    )
                )
        return findings
