"""Merged patients: a tombstone answers 410 Gone with a pointer to the patient it was merged into.

Every verb on `/api/v1/patients/{tombstone}/` (and evaluating one) is refused with
`{"detail": ..., "merged_into": "<target>"}`, so a caller holding the old id learns where the record went.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status
from rest_framework.exceptions import APIException

from patients.models import Patient


class PatientGone(APIException):
    """410: the patient was merged into another one; the body points there."""

    status_code = status.HTTP_410_GONE
    default_code = "merged"

    def __init__(self, patient: Patient):
        message = f"Patient '{patient.pk}' was merged into '{patient.merged_into_id}'; use that id."
        super().__init__({"detail": message, "merged_into": patient.merged_into_id})


def refuse_tombstone(patient: Patient) -> Patient:
    """The patient itself, or PatientGone when it is a tombstone."""
    if patient.is_tombstone:
        raise PatientGone(patient)
    return patient


class GoneSerializer(serializers.Serializer):
    """`{"detail": "...", "merged_into": "<id>"}`: the patient was merged into another."""

    detail = serializers.CharField()
    merged_into = serializers.CharField(help_text="The id of the patient this one was merged into.")


GONE = OpenApiResponse(GoneSerializer, description="Merged into another patient: `merged_into` names it.")


class TombstoneMixin:
    """Viewset mixin: lists skip tombstones; a tombstone's detail, update and delete answer 410."""

    def get_queryset(self):
        queryset = super().get_queryset()
        return queryset.filter(merged_into__isnull=True) if self.action == "list" else queryset

    def get_object(self):
        return refuse_tombstone(super().get_object())


def validate_live_patient(patient: Patient) -> Patient:
    """Serializer field check: a new fact about a patient names the live record, not a merged one (400)."""
    if patient is not None and patient.is_tombstone:
        raise serializers.ValidationError(
            f"Patient '{patient.pk}' was merged into '{patient.merged_into_id}'; use that id."
        )
    return patient
