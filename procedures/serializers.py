"""JSON shapes of the procedure catalogue and of patient procedures."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from clinrec.identifiers import FhirIdField
from clinrec.serializers import CallerIdentifiedModelSerializer, ExpandableModelSerializer
from patients.serializers import PatientSerializer
from patients.tombstones import validate_live_patient
from procedures.models import PatientProcedure, Procedure

CLOCK_SKEW = timedelta(minutes=5)


class ProcedureSerializer(CallerIdentifiedModelSerializer):
    """A catalogue procedure; `department` is matched case-insensitively by the rules."""

    id = FhirIdField(
        validators=[
            UniqueValidator(queryset=Procedure.objects.all(), message="A procedure with this id already exists.")
        ],
        help_text="The information system's procedure id (FHIR id syntax).",
    )

    class Meta:
        model = Procedure
        fields = ["id", "name", "department", "is_surgery", "code", "description"]

    def validate_department(self, value: str) -> str:
        value = value.strip()
        if not value:
            raise serializers.ValidationError("This field may not be blank.")
        return value


class PatientProcedureSerializer(ExpandableModelSerializer):
    """A procedure a patient underwent; `?expand=patient,procedure` nests both."""

    expand_serializers = {"patient": PatientSerializer, "procedure": ProcedureSerializer}

    class Meta:
        model = PatientProcedure
        fields = ["id", "patient", "procedure", "performed_at", "report"]

    def validate_patient(self, value):
        return validate_live_patient(value)

    def validate_performed_at(self, value: datetime) -> datetime:
        # A few minutes of clock skew between the hospital's systems and ClinRec are tolerated.
        if value > timezone.now() + CLOCK_SKEW:
            raise serializers.ValidationError("A procedure cannot have been performed in the future.")
        if value.year < 1900:
            raise serializers.ValidationError("Must be 1900 or later.")
        return value
