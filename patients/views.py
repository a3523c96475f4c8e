"""The patients resource: `/api/v1/patients/`."""

from rest_framework.filters import OrderingFilter, SearchFilter

from clinrec.openapi import resource_schema
from clinrec.viewsets import FHIR_LOOKUP_REGEX, ResourceViewSet
from patients import services
from patients.models import Patient
from patients.serializers import PatientSerializer
from patients.tombstones import GONE, TombstoneMixin


# A merged patient's id answers 410 Gone with `merged_into` on every verb; lists and search skip it.
@resource_schema("patient", "patients", detail_responses={410: GONE})
class PatientViewSet(TombstoneMixin, ResourceViewSet):
    """Patients pushed by the hospital's patient index; `?search=` matches name or id; merged ones are gone."""

    queryset = Patient.objects.all()
    serializer_class = PatientSerializer
    lookup_value_regex = FHIR_LOOKUP_REGEX
    filter_backends = [SearchFilter, OrderingFilter]
    search_fields = ["id", "name"]
    ordering_fields = ["id", "name", "birth_date", "created_at", "updated_at"]

    def perform_create(self, serializer):
        serializer.instance = services.create_patient(data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_patient(patient=serializer.instance, data=serializer.validated_data)
