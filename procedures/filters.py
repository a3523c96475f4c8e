"""Filters of the patient procedure list."""

import django_filters

from procedures.models import PatientProcedure


class PatientProcedureFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(field_name="patient_id", help_text="Patient id.")
    procedure = django_filters.CharFilter(field_name="procedure_id", help_text="Procedure id.")
    performed_after = django_filters.IsoDateTimeFilter(field_name="performed_at", lookup_expr="gte")
    performed_before = django_filters.IsoDateTimeFilter(field_name="performed_at", lookup_expr="lte")

    class Meta:
        model = PatientProcedure
        fields = ["patient", "procedure", "performed_after", "performed_before"]
