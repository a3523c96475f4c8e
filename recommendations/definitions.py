"""The standard recommendation definitions: one per rule of the engine's registry, present after `migrate`.

Derived from `RULES`, so a new rule brings its definition with it: the id is the rule key with dashes, the name
and description are the rule's.
"""

from __future__ import annotations

from typing import NamedTuple

from recommendations.engine import RULES


class StandardDefinition(NamedTuple):
    id: str
    rule: str
    name: str
    description: str


STANDARD_DEFINITIONS: tuple[StandardDefinition, ...] = tuple(
    StandardDefinition(rule.key.replace("_", "-"), rule.key, rule.recommendation_name, rule.description)
    for rule in RULES.values()
)
STANDARD_BY_RULE = {definition.rule: definition for definition in STANDARD_DEFINITIONS}
RULE_CHOICES: list[tuple[str, str]] = [
    (rule.key, f"{rule.key} ({rule.recommendation_name})") for rule in RULES.values()
]
