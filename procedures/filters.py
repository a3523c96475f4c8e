"""Filters of the procedure catalogue and the patient procedure list."""

import django_filters

from clinrec.filters import UtcIsoDateTimeFilter
from procedures.models import PatientProcedure, Procedure

BOOLEAN_VALUES = {"true": True, "True": True, "1": True, "false": False, "False": False, "0": False}


class StrictBooleanFilter(django_filters.TypedChoiceFilter):
    """`true`/`false` (or 1/0); anything else is a 400 rather than a filter silently ignored."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [(value, value) for value in BOOLEAN_VALUES])
        kwargs.setdefault("coerce", lambda value: BOOLEAN_VALUES.get(value, value))
        super().__init__(*args, **kwargs)


class ProcedureFilter(django_filters.FilterSet):
    department = django_filters.CharFilter(lookup_expr="iexact", help_text="Department, any case.")
    is_surgery = StrictBooleanFilter(help_text="true or false.")

    class Meta:
        model = Procedure
        fields = ["department", "is_surgery"]


class PatientProcedureFilter(django_filters.FilterSet):
    patient = django_filters.CharFilter(field_name="patient_id", help_text="Patient id.")
    procedure = django_filters.CharFilter(field_name="procedure_id", help_text="Procedure id.")
    performed_after = UtcIsoDateTimeFilter(field_name="performed_at", lookup_expr="gte")
    performed_before = UtcIsoDateTimeFilter(field_name="performed_at", lookup_expr="lte")

    class Meta:
        model = PatientProcedure
        fields = ["patient", "procedure", "performed_after", "performed_before"]
