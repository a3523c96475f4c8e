"""Writes on patients: creation and update, with the BMI derived from height and weight when not given."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from clinrec.concurrency import assign_changes, save_changes
from patients.models import Patient

# Field rules are checked in Python; uniqueness and the CHECK constraints are the database's own (a clash
# that slips past the serializer becomes a 409), instead of one query per constraint on every write.
FIELD_CHECKS_ONLY = {"validate_unique": False, "validate_constraints": False}


def compute_bmi(*, height_cm: float | None, weight_kg: float | None) -> float | None:
    """kg / m², one decimal; None unless both measurements are known."""
    if not height_cm or not weight_kg:
        return None
    metres = height_cm / 100
    return round(weight_kg / (metres * metres), 1)


def with_derived_bmi(data: dict[str, Any], *, current: Patient | None = None) -> dict[str, Any]:
    """Derive `bmi` from height and weight (new values over stored ones) unless the caller gave one.

    On an update it is derived again only when height, weight or bmi are part of the request, so a stored
    BMI never silently changes; and only when both measurements are known, or one was just cleared.
    """
    if data.get("bmi") is not None:
        return {**data, "bmi": round(data["bmi"], 1)}  # stored as the rules compare it: one decimal
    touched = current is None or {"bmi", "height_cm", "weight_kg"} & data.keys()
    derived = compute_bmi(
        height_cm=data.get("height_cm", getattr(current, "height_cm", None)),
        weight_kg=data.get("weight_kg", getattr(current, "weight_kg", None)),
    )
    if touched and derived is not None:
        return {**data, "bmi": derived}
    # A measurement cleared in this request takes its derived BMI along; it described a body no longer on record.
    if any(field in data and data[field] is None for field in ("height_cm", "weight_kg")):
        return {**data, "bmi": None}
    return data


@transaction.atomic
def create_patient(*, data: dict[str, Any]) -> Patient:
    patient = Patient(**with_derived_bmi(data))
    patient.full_clean(**FIELD_CHECKS_ONLY)
    patient.save(force_insert=True)
    return patient


@transaction.atomic
def update_patient(*, patient: Patient, data: dict[str, Any]) -> Patient:
    """Apply `data` to a patient row the caller has locked (the API does), writing only the columns it changes.

    Under the lock `patient` holds the measurements as stored, so the BMI derived here matches the height
    and weight on record even when another request has just changed one of them.
    """
    changed = assign_changes(patient, with_derived_bmi(data, current=patient))
    patient.full_clean(**FIELD_CHECKS_ONLY)
    save_changes(patient, changed)
    return patient
