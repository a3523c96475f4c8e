"""Thresholds of the clinical rules, validated once so a misconfigured deployment fails at start-up.

Settings read the values from the environment and hand them to `EngineConfig.from_values`, which accepts
them either typed or as the raw strings of the environment (`"65"`, `" Orthopaedics, Neurosurgery ,"`).
Department names are compared lower-case and stripped, both here and in the rules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from dataclasses import dataclass


def normalise_department(name: str) -> str:
    """The comparable form of a department name: stripped and lower-case."""
    return name.strip().lower()


def parse_departments(value: str | Iterable[str]) -> frozenset[str]:
    """Departments from a comma-separated string or an iterable of names, normalised, empties dropped."""
    names = value.split(",") if isinstance(value, str) else value
    parsed: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"rehab_departments must contain department names, got {name!r}")
        normalised = normalise_department(name)
        if normalised:
            parsed.add(normalised)
    return frozenset(parsed)


def _whole_number(field: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{field} must be a whole number, got {value!r}")


def _finite_number(field: str, value: object) -> float:
    number = math.nan
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError, ValueError):
            number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise ValueError(f"{field} must be a finite number, got {value!r}")
    return number


@dataclass(frozen=True)
class EngineConfig:
    """Thresholds of the three rules; each rule fires strictly above its threshold.

    An empty `rehab_departments` is allowed and means no surgery qualifies for post-operative rehabilitation.
    A rule named in `disabled_rules` never fires. These defaults are the registry's parameter defaults
    (`Parameter.default` reads them), and a rule set stores these values per version.
    """

    physical_therapy_min_age: int = 65
    weight_management_min_bmi: float = 30.0
    rehab_departments: frozenset[str] = frozenset({"orthopaedics"})
    rehab_window_days: int = 90
    disabled_rules: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.physical_therapy_min_age <= 0:
            raise ValueError(
                f"physical_therapy_min_age must be a positive number of years, got {self.physical_therapy_min_age}"
            )
        if not math.isfinite(self.weight_management_min_bmi) or self.weight_management_min_bmi <= 0:
            raise ValueError(f"weight_management_min_bmi must be a positive BMI, got {self.weight_management_min_bmi}")
        if self.rehab_window_days < 0:
            raise ValueError(
                f"rehab_window_days must be zero or a positive number of days, got {self.rehab_window_days}"
            )
        object.__setattr__(self, "rehab_departments", parse_departments(self.rehab_departments))
        object.__setattr__(self, "disabled_rules", frozenset(self.disabled_rules))

    @classmethod
    def from_values(
        cls,
        *,
        physical_therapy_min_age: int | str,
        weight_management_min_bmi: float | str,
        rehab_departments: str | Iterable[str],
        rehab_window_days: int | str,
    ) -> EngineConfig:
        """Build a config from settings values, parsing strings and raising `ValueError` on bad values."""
        return cls(
            physical_therapy_min_age=_whole_number("physical_therapy_min_age", physical_therapy_min_age),
            weight_management_min_bmi=_finite_number("weight_management_min_bmi", weight_management_min_bmi),
            rehab_departments=parse_departments(rehab_departments),
            rehab_window_days=_whole_number("rehab_window_days", rehab_window_days),
        )
