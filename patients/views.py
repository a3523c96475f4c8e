"""The patients resource: `/api/v1/patients/`."""

from urllib.parse import urlencode

from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.reverse import reverse

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

    def browsable_links(self, request) -> list[tuple[str, str]]:
        """The browsable API's links from one patient to its procedures, recommendations and evaluation."""
        pk = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if pk is None:
            return []
        query = urlencode({"patient": pk})
        return [
            ("Procedures", f"{reverse('patient-procedure-list', request=request)}?{query}"),
            ("Recommendations", f"{reverse('patient-recommendation-list', request=request)}?{query}"),
            ("Evaluate", reverse("patient-evaluate", kwargs={"pk": pk}, request=request)),
        ]

    def perform_create(self, serializer):
        serializer.instance = services.create_patient(data=serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_patient(patient=serializer.instance, data=serializer.validated_data)
