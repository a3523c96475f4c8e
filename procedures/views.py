"""The procedure catalogue (`/api/v1/procedures/`) and patient procedures (`/api/v1/patient-procedures/`)."""

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.filters import SearchFilter

from clinrec.openapi import resource_schema
from clinrec.viewsets import FHIR_LOOKUP_REGEX, ResourceViewSet
from patients.models import Patient
from procedures.filters import PatientProcedureFilter, ProcedureFilter
from procedures.models import PatientProcedure, Procedure
from procedures.serializers import PatientProcedureSerializer, ProcedureSerializer


@resource_schema("procedure", "catalogue procedures")
class ProcedureViewSet(ResourceViewSet):
    """The hospital's procedure catalogue; `?department=` and `?is_surgery=` filter it, `?search=` matches name."""

    queryset = Procedure.objects.all()
    serializer_class = ProcedureSerializer
    lookup_value_regex = FHIR_LOOKUP_REGEX
    filterset_class = ProcedureFilter
    search_fields = ["id", "name", "code"]
    filter_backends = [DjangoFilterBackend, SearchFilter]


@resource_schema("patient procedure", "patient procedures", expandable=("patient", "procedure"))
class PatientProcedureViewSet(ResourceViewSet):
    """The procedure history of patients: which procedure, when, and its report."""

    queryset = PatientProcedure.objects.all()
    serializer_class = PatientProcedureSerializer
    filterset_class = PatientProcedureFilter
    expandable = ("patient", "procedure")
    cache_models = (PatientProcedure, Patient, Procedure)
