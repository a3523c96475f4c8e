"""`GET /api/v1/patients/{id}/history/`: the audit trail of one patient's record (clinicians and admins)."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from audit import selectors
from clinrec.openapi import BAD_REQUEST, NOT_FOUND, READ_ERRORS
from clinrec.viewsets import no_such_id
from patients.models import Patient
from security.permissions import requires_permission


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class HistoryEntrySerializer(serializers.Serializer):
    """One change: what (`model`, `object_id`), how (`action`), when, who, from where, and which fields."""

    id = serializers.IntegerField(help_text="The history record's id (unique within its `model`).")
    model = serializers.ChoiceField(choices=["patient", "patient_procedure", "patient_recommendation"])
    object_id = serializers.CharField()
    action = serializers.ChoiceField(choices=["created", "updated", "deleted"])
    at = serializers.DateTimeField()
    user = serializers.CharField(allow_null=True, help_text="Who; null for a system write (worker, command).")
    source = serializers.ChoiceField(
        choices=["api", "admin", "fhir", "cds", "web", "system"],
        help_text="The way in: `system` is the worker or a command; `cds` an EHR calling CDS Hooks.",
    )
    client_address = serializers.IPAddressField(allow_null=True)
    changes = FieldChangeSerializer(many=True, help_text="Changed fields, old → new (all set fields on creation).")


class PatientHistoryView(GenericAPIView):
    """Every change of the patient, its procedure history and its recommendations, newest first."""

    permission_classes = [requires_permission("patients.view_patient_history")]
    serializer_class = HistoryEntrySerializer
    queryset = Patient.objects.none()  # for the schema; the rows come from the selector

    @extend_schema(
        summary="Audit trail of a patient",
        description=(
            "Who changed what and when: each create, update and delete of the patient, of its procedure history "
            "and of its recommendations, newest first, with the changed fields (old and new), the user (null and "
            "`source: system` for the worker), and the client address. Paginated (limit/offset). Read-only: "
            "history cannot be changed through the API. Clinician and admin roles (viewers do not read it)."
        ),
        responses={200: HistoryEntrySerializer(many=True), 400: BAD_REQUEST, **READ_ERRORS, 404: NOT_FOUND},
        tags=["patients"],
    )
    def get(self, request, pk: str):
        if no_such_id(pk) or not Patient.objects.filter(pk=pk).exists():
            raise Http404(f"No patient with id {pk!r}.")
        page = self.paginate_queryset(selectors.patient_history_index(patient_id=pk))
        entries = selectors.history_entries(list(page)) if page else []
        return self.get_paginated_response(HistoryEntrySerializer(entries, many=True).data)
