"""The clinical rules of ClinRec, one function per rule, and the `RULES` registry that orders them.

Each rule takes a snapshot, the evaluation instant and the config, and returns the reason it fired or `None`.
A reason states only facts present in the snapshot, with numbers printed as recorded, so a clinician can
check it against the chart. `RULES` maps each rule name to its recommendation name and function, in the
order findings are reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import NamedTuple

from .config import EngineConfig, normalise_department
from .snapshot import PatientSnapshot, age_on

PHYSICAL_THERAPY = "physical_therapy"
WEIGHT_MANAGEMENT = "weight_management"
POST_OP_REHAB = "post_op_rehab"

RuleCheck = Callable[[PatientSnapshot, datetime, EngineConfig], str | None]


class Rule(NamedTuple):
    """A registered rule: the recommendation it yields and the function deciding whether it fires."""

    recommendation_name: str
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


def physical_therapy(snapshot: PatientSnapshot, at: datetime, config: EngineConfig) -> str | None:
    """Fires when the patient is older than the age threshold on the date of `at` and has chronic pain.

    Age is counted in whole years on `at.date()`, in the timezone `at` carries. Without a birth date the rule
    does not fire.
    """
    if snapshot.birth_date is None or not snapshot.chronic_pain:
        return None
    age = age_on(snapshot.birth_date, at.date())
    if age <= config.physical_therapy_min_age:
        return None
    return f"age {age} > {config.physical_therapy_min_age} and chronic pain recorded"


def weight_management(snapshot: PatientSnapshot, at: datetime, config: EngineConfig) -> str | None:
    """Fires when the recorded BMI is strictly above the threshold; without a BMI the rule does not fire."""
    if snapshot.bmi is None or snapshot.bmi <= config.weight_management_min_bmi:
        return None
    return f"BMI {format_number(snapshot.bmi)} > {format_number(config.weight_management_min_bmi)}"


def post_op_rehab(snapshot: PatientSnapshot, at: datetime, config: EngineConfig) -> str | None:
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
    return (
        f"{normalise_department(latest.department)} surgery '{latest.name}' "
        f"{_ago(at - latest.performed_at)} (within {config.rehab_window_days} days)"
    )


RULES: Mapping[str, Rule] = MappingProxyType(
    {
        PHYSICAL_THERAPY: Rule("Physical Therapy", physical_therapy),
        WEIGHT_MANAGEMENT: Rule("Weight Management Program", weight_management),
        POST_OP_REHAB: Rule("Post-Op Rehabilitation Plan", post_op_rehab),
    }
)
