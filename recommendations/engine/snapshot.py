"""Input of the rule engine: a frozen, ORM-free picture of one patient at evaluation time.

Selectors build a `PatientSnapshot` from the database; the engine only ever sees these plain values, so the
rules can be tested and replaced without Django. `age_on` lives here because age is a fact derived from the
snapshot's birth date and the evaluation date, and the Patient model reuses it for its `age` property.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


def age_on(birth_date: date, on: date) -> int:
    """Whole years between `birth_date` and `on`, the way a birthday is counted.

    A person born on 29 February becomes a year older on 1 March in non-leap years. The result is negative
    when `on` precedes `birth_date`; callers validating birth dates reject those first.
    """
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)


@dataclass(frozen=True)
class ProcedureFact:
    """One procedure the patient underwent (or is scheduled for), with its catalogue facts."""

    name: str
    department: str
    is_surgery: bool
    performed_at: datetime
    procedure_id: str = ""  # the catalogue id, quoted in provenance
    patient_procedure_id: int | None = None  # the history entry, quoted in provenance

    def __post_init__(self) -> None:
        if self.performed_at.tzinfo is None or self.performed_at.utcoffset() is None:
            raise ValueError(f"performed_at of procedure {self.name!r} must be timezone-aware")


@dataclass(frozen=True)
class PatientSnapshot:
    """The facts about one patient that the rules read; `None` means the fact is not recorded."""

    patient_id: str
    birth_date: date | None
    bmi: float | None
    chronic_pain: bool
    procedures: tuple[ProcedureFact, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.procedures, tuple):
            object.__setattr__(self, "procedures", tuple(self.procedures))
