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
    """Default engine: the three rules of the spec."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config if config is not None else EngineConfig()

    def evaluate(self, snapshot: PatientSnapshot, *, at: datetime) -> list[Finding]:
        """Findings of every rule that fires at `at`, in the order of `RULES`; `at` must be timezone-aware."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("evaluation instant `at` must be timezone-aware")
        findings: list[Finding] = []
        for rule_name, (recommendation_name, check) in RULES.items():
            reason = check(snapshot, at, self.config)
            if reason is not None:
                findings.append(Finding(rule=rule_name, recommendation_name=recommendation_name, reason=reason))
        return findings
