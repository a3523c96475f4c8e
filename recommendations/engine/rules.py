"""The rule registry: the one place a rule kind of ClinRec is defined, and the function of each rule.

A `Rule` is its key, the recommendation it yields, a description, its tunable parameters (type, unit, bounds,
default, description) and the function deciding whether it fires. Every rule can also be switched on or off
(`enabled`). Everything else derives from `RULES`: rule-set validation and its JSON schema
(`engine.parameters`), the choices of a definition's `rule` (API, OpenAPI enum, admin), the standard
definitions and the seed, and the README's rules table (`manage.py rules_table`).

Each rule function takes a snapshot, the evaluation instant and the config, and returns `Fired` (the reason
and the facts it used) or `None`. A reason states only facts present in the snapshot, with numbers printed as
recorded, so a clinician can check it against the chart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from .config import EngineConfig, normalise_department
from .snapshot import PatientSnapshot, age_on

PHYSICAL_THERAPY = "physical_therapy"
WEIGHT_MANAGEMENT = "weight_management"
POST_OP_REHAB = "post_op_rehab"


class Fired(NamedTuple):
    """What a rule returns when it fires: the reason in words and the facts it used, as JSON-ready data."""

    reason: str
    facts: dict[str, Any]


RuleCheck = Callable[[PatientSnapshot, datetime, EngineConfig], Fired | None]

ParameterKind = Literal["integer", "number", "departments"]
_CONFIG_DEFAULTS = {item.name: item.default for item in fields(EngineConfig) if item.default is not MISSING}


@dataclass(frozen=True)
class Parameter:
    """A tunable parameter of a rule: stored in rule sets under `parameters.<rule>.<key>`.

    `minimum` and `maximum` are inclusive bounds (for `departments`, `minimum` is the least number of names).
    The default is the `EngineConfig` field's default, so there is one default per parameter.
    """

    key: str
    config_field: str
    kind: ParameterKind
    unit: str
    description: str
    minimum: float | None = None
    maximum: float | None = None

    @property
    def default(self) -> Any:
        value = _CONFIG_DEFAULTS[self.config_field]
        return sorted(value) if self.kind == "departments" else value


@dataclass(frozen=True)
class Rule:
    """A registered rule: the recommendation it yields, what it means, its parameters and its function."""

    key: str
    recommendation_name: str
    description: str
    fires_when: str
    parameters: tuple[Parameter, ...]
    check: RuleCheck


def format_number(value: float) -> str:
    """A number as recorded, without trailing noise: 30.0 → "30", 31.2 → "31.2", 30.05 → "30.05".

    The shortest exact representation is used rather than rounding, so a reason never shows a value equal to
    the threshold it exceeded.
    """
    number = float(value)
    if number.is_integer():
        return str(int(number))
    return repr(number)


def _ago(elapsed: timedelta) -> str:
    days = elapsed.days
    if days == 0:
        return "less than a day ago"
    if days == 1:
        return "1 day ago"
    return f"{days} days ago"


def physical_therapy(snapshot: PatientSnapshot, at: datetime, config: EngineConfig) -> Fired | None:
    """Fires when the patient is older than the age threshold on the date of `at` and has chronic pain.

    Age is counted in whole years on `at.date()`, in the timezone `at` carries. Without a birth date the rule
    does not fire.
    """
    if snapshot.birth_date is None or not snapshot.chronic_pain:
        return None
    age = age_on(snapshot.birth_date, at.date())
    if age <= config.physical_therapy_min_age:
        return None
    return Fired(
        f"age {age} > {config.physical_therapy_min_age} and chronic pain recorded",
        {"age": age, "chronic_pain": True, "min_age": config.physical_therapy_min_age},
    )


def weight_management(snapshot: PatientSnapshot, at: datetime, config: EngineConfig) -> Fired | None:
    """Fires when the recorded BMI is strictly above the threshold; without a BMI the rule does not fire."""
    if snapshot.bmi is None or snapshot.bmi <= config.weight_management_min_bmi:
        return None
    return Fired(
        f"BMI {format_number(snapshot.bmi)} > {format_number(config.weight_management_min_bmi)}",
        {"bmi": snapshot.bmi, "min_bmi": config.weight_management_min_bmi},
    )


def post_op_rehab(snapshot: PatientSnapshot, at: datetime, config: EngineConfig) -> Fired | None:
    """Fires for a surgery in an admissible department performed within the rehabilitation window before `at`.

    The window is inclusive at both ends: a surgery performed exactly `rehab_window_days` days before `at`
    qualifies, one a second older does not, and one dated after `at` (scheduled) does not. Departments are
    compared stripped and case-insensitively. When several surgeries qualify the reason names the most recent.
    """
    window = timedelta(days=config.rehab_window_days)
    qualifying = [
        procedure
        for procedure in snapshot.procedures
        if procedure.is_surgery
        and normalise_department(procedure.department) in config.rehab_departments
        and at - window <= procedure.performed_at <= at
    ]
    if not qualifying:
        return None
    latest = max(qualifying, key=lambda procedure: procedure.performed_at)
    return Fired(
        f"{normalise_department(latest.department)} surgery '{latest.name}' "
        f"{_ago(at - latest.performed_at)} (within {config.rehab_window_days} days)",
        {
            "procedure": {
                "id": latest.procedure_id,
                "patient_procedure": latest.patient_procedure_id,
                "name": latest.name,
                "department": normalise_department(latest.department),
                "performed_at": latest.performed_at.isoformat(),
            },
            "window_days": config.rehab_window_days,
            "departments": sorted(config.rehab_departments),
        },
    )


RULES: Mapping[str, Rule] = MappingProxyType(
    {
        rule.key: rule
        for rule in (
            Rule(
                key=PHYSICAL_THERAPY,
                recommendation_name="Physical Therapy",
                description="Supervised physiotherapy programme for older patients living with chronic pain.",
                fires_when="age (whole years) > `min_age` and chronic pain recorded",
                parameters=(
                    Parameter(
                        "min_age",
                        "physical_therapy_min_age",
                        "integer",
                        "years",
                        "Age the patient must exceed (strictly).",
                        minimum=1,
                        maximum=120,
                    ),
                ),
                check=physical_therapy,
            ),
            Rule(
                key=WEIGHT_MANAGEMENT,
                recommendation_name="Weight Management Program",
                description="Dietetic and activity programme for patients with obesity (BMI above the threshold).",
                fires_when="BMI > `min_bmi`",
                parameters=(
                    Parameter(
                        "min_bmi",
                        "weight_management_min_bmi",
                        "number",
                        "kg/m²",
                        "BMI the patient must exceed (strictly).",
                        minimum=10,
                        maximum=80,
                    ),
                ),
                check=weight_management,
            ),
            Rule(
                key=POST_OP_REHAB,
                recommendation_name="Post-Op Rehabilitation Plan",
                description=(
                    "Rehabilitation plan after recent surgery in an admissible department (orthopaedics by default)."
                ),
                fires_when="a surgery in one of `departments` performed within the last `window_days` days",
                parameters=(
                    Parameter(
                        "departments",
                        "rehab_departments",
                        "departments",
                        "department names",
                        "Departments whose surgeries qualify (case-insensitive).",
                        minimum=1,
                    ),
                    Parameter(
                        "window_days",
                        "rehab_window_days",
                        "integer",
                        "days",
                        "How long after the surgery the plan is recommended (inclusive).",
                        minimum=0,
                        maximum=3650,
                    ),
                ),
                check=post_op_rehab,
            ),
        )
    }
)
