"""Output of the rule engine: one `Finding` per rule that fired.

A finding names the rule, the recommendation definition it yields, the human-readable reason and the facts
that made it fire (JSON-ready values: numbers, booleans, strings, lists and dicts of them). It carries no
identifiers of stored records beyond those in the snapshot; the evaluation service maps it onto definitions
and patient links, and stores the facts as the recommendation's provenance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Finding:
    """A rule that fired for a patient, with a reason stating only true facts and those facts as data."""

    rule: str
    recommendation_name: str
    reason: str
    facts: Mapping[str, Any] = field(default_factory=dict)
