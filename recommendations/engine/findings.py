"""Output of the rule engine: one `Finding` per rule that fired.

A finding names the rule, the recommendation definition it yields and the facts that made it fire. It carries
no identifiers of stored records; the evaluation service maps it onto definitions and patient links.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """A rule that fired for a patient, with a human-readable reason stating only true facts."""

    rule: str
    recommendation_name: str
    reason: str
