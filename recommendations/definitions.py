"""The standard recommendation definitions: one per engine rule, present after `migrate`."""

from __future__ import annotations

from typing import NamedTuple

from recommendations.engine import PHYSICAL_THERAPY, POST_OP_REHAB, WEIGHT_MANAGEMENT


class StandardDefinition(NamedTuple):
    id: str
    rule: str
    name: str
    description: str


STANDARD_DEFINITIONS: tuple[StandardDefinition, ...] = (
    StandardDefinition(
        "physical-therapy",
        PHYSICAL_THERAPY,
        "Physical Therapy",
        "Supervised physiotherapy programme for older patients living with chronic pain.",
    ),
    StandardDefinition(
        "weight-management",
        WEIGHT_MANAGEMENT,
        "Weight Management Program",
        "Dietetic and activity programme for patients with obesity (BMI above the threshold).",
    ),
    StandardDefinition(
        "post-op-rehab",
        POST_OP_REHAB,
        "Post-Op Rehabilitation Plan",
        "Rehabilitation plan after recent surgery in an admissible department (orthopaedics by default).",
    ),
)
STANDARD_BY_RULE = {definition.rule: definition for definition in STANDARD_DEFINITIONS}
