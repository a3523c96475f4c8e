"""JSON shape of a patient."""

from __future__ import annotations

from datetime import date

from django.utils import timezone
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from clinrec.identifiers import FhirIdField
from clinrec.serializers import CallerIdentifiedModelSerializer
from patients.models import Patient

EARLIEST_BIRTH_DATE = date(1900, 1, 1)


class PatientSerializer(CallerIdentifiedModelSerializer):
    """A patient; `bmi` is computed from height and weight when omitted, `age` from `birth_date`."""

    id = FhirIdField(
        validators=[UniqueValidator(queryset=Patient.objects.all(), message="A patient with this id already exists.")],
        help_text="The hospital's patient id (FHIR id syntax: 1–64 of A–Z a–z 0–9 - .).",
    )
    age = serializers.IntegerField(read_only=True, allow_null=True, help_text="Whole years today.")

    class Meta:
        model = Patient
        fields = [
            "id",
            "name",
            "birth_date",
            "sex",
            "height_cm",
            "weight_kg",
            "bmi",
            "chronic_pain",
            "email",
            "age",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_birth_date(self, value: date | None) -> date | None:
        if value is not None and value > timezone.localdate():
            raise serializers.ValidationError("Birth date cannot be in the future.")
        if value is not None and value < EARLIEST_BIRTH_DATE:
            raise serializers.ValidationError(f"Birth date cannot be before {EARLIEST_BIRTH_DATE.isoformat()}.")
        return value
