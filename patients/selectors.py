"""Reads about patients with a business meaning: which records are live, and where a merged one went."""

from __future__ import annotations

from django.db.models import QuerySet

from patients.models import Patient


def live_patients() -> QuerySet[Patient]:
    """Patients that are not tombstones of a merge: what lists, search and evaluation see."""
    return Patient.objects.filter(merged_into__isnull=True)


def merged_into(patient_id: str) -> str | None:
    """The id of the patient this one was merged into (FHIR's `replaced-by` link), or None (live or unknown)."""
    return Patient.objects.filter(pk=patient_id).values_list("merged_into_id", flat=True).first()
