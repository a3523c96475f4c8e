"""The `/fhir/` endpoints: metadata, Patient read and $everything, the three searches, and the transaction."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from clinrec.viewsets import no_such_id
from interop.fhir import codes, ingest, mapping
from interop.fhir.capability import capability_statement
from interop.fhir.http import FhirError, FhirView
from interop.fhir.search import check_parameters, paged_searchset, patient_parameter
from interop.openapi import FHIR_BUNDLE, FHIR_READ_ERRORS, FHIR_RESOURCE, OPERATION_OUTCOME
from patients.models import Patient
from procedures.models import PatientProcedure
from recommendations.models import PatientRecommendation
from security.permissions import requires_permission

FhirRead = requires_permission("patients.view_patient")
SEARCH_PAGING = [
    OpenApiParameter("_count", int, description="Page size (default 50, at most 500)."),
    OpenApiParameter("_offset", int, description="Entries to skip (the `next` link carries it)."),
]
PATIENT_PARAMETER = OpenApiParameter("patient", str, required=True, description="The patient's id (or Patient/<id>).")
# A ServiceRequest status (search token) → the patient recommendation status it stands for.
LINK_STATUS_BY_REQUEST_STATUS = {fhir: link for link, fhir in mapping.SERVICE_REQUEST_STATUS.items()}


def fhir_base(request) -> str:
    return request.build_absolute_uri("/fhir/")


def get_patient(pk: str) -> Patient:
    patient = None if no_such_id(pk) else Patient.objects.filter(pk=pk).first()
    if patient is None:
        raise FhirError(f"No Patient with id {pk!r}.", status_code=404, issue_code="not-found")
    return patient


class CapabilityStatementView(FhirView):
    """`GET /fhir/metadata`: what this FHIR server supports."""

    permission_classes = [FhirRead]

    @extend_schema(
        summary="FHIR CapabilityStatement",
        description="The FHIR R4B interactions, searches and operations ClinRec serves.",
        responses={200: FHIR_RESOURCE, **FHIR_READ_ERRORS},
        tags=["fhir"],
    )
    def get(self, request):
        return Response(mapping.as_json(capability_statement(base_url=fhir_base(request))))


class PatientReadView(FhirView):
    """`GET /fhir/Patient/{id}`."""

    permission_classes = [FhirRead]

    @extend_schema(
        summary="Read a FHIR Patient",
        responses={200: FHIR_RESOURCE, **FHIR_READ_ERRORS, 404: OPERATION_OUTCOME},
        tags=["fhir"],
    )
    def get(self, request, pk: str):
        return Response(mapping.as_json(mapping.patient_resource(get_patient(pk))))


class PatientEverythingView(FhirView):
    """`GET /fhir/Patient/{id}/$everything`: the patient and every resource ClinRec holds about them."""

    permission_classes = [FhirRead]

    @extend_schema(
        summary="Everything about a patient (FHIR $everything)",
        description=(
            "A searchset Bundle: the Patient, vital-signs Observations (height, weight, BMI), the chronic-pain "
            "Condition, a Procedure per history entry and a ServiceRequest per recommendation."
        ),
        responses={200: FHIR_BUNDLE, **FHIR_READ_ERRORS, 404: OPERATION_OUTCOME},
        tags=["fhir"],
    )
    def get(self, request, pk: str):
        resources = mapping.everything(get_patient(pk))
        bundle = mapping.searchset(
            resources, total=len(resources), self_url=request.build_absolute_uri(), base_url=fhir_base(request)
        )
        return Response(mapping.as_json(bundle))


class ServiceRequestSearchView(FhirView):
    """`GET /fhir/ServiceRequest?patient=&status=`: the patient's recommendations."""

    permission_classes = [FhirRead]

    @extend_schema(
        summary="Search ServiceRequests (recommendations) of a patient",
        parameters=[
            PATIENT_PARAMETER,
            OpenApiParameter("status", str, description="active, completed or revoked (comma-separated)."),
            *SEARCH_PAGING,
        ],
        responses={200: FHIR_BUNDLE, **FHIR_READ_ERRORS},
        tags=["fhir"],
    )
    def get(self, request):
        params = request.query_params
        check_parameters(params, {"patient", "status"})
        links = (
            PatientRecommendation.objects.filter(patient_id=patient_parameter(params))
            .select_related("recommendation")
            .order_by("recommended_at", "id")
        )
        if params.get("status"):
            wanted = [value.strip() for value in params["status"].split(",")]
            unknown = [value for value in wanted if value not in LINK_STATUS_BY_REQUEST_STATUS]
            if unknown:
                raise FhirError(
                    f"status must be one of {', '.join(LINK_STATUS_BY_REQUEST_STATUS)}, got {', '.join(unknown)}.",
                    expression=["status"],
                )
            links = links.filter(status__in=[LINK_STATUS_BY_REQUEST_STATUS[value] for value in wanted])
        bundle = paged_searchset(request, links, mapping.service_request_for, base_url=fhir_base(request))
        return Response(mapping.as_json(bundle))


class ProcedureSearchView(FhirView):
    """`GET /fhir/Procedure?patient=`: the patient's procedure history."""

    permission_classes = [FhirRead]

    @extend_schema(
        summary="Search Procedures of a patient",
        parameters=[PATIENT_PARAMETER, *SEARCH_PAGING],
        responses={200: FHIR_BUNDLE, **FHIR_READ_ERRORS},
        tags=["fhir"],
    )
    def get(self, request):
        params = request.query_params
        check_parameters(params, {"patient"})
        history = (
            PatientProcedure.objects.filter(patient_id=patient_parameter(params))
            .select_related("procedure")
            .order_by("performed_at", "id")
        )
        bundle = paged_searchset(request, history, mapping.procedure_resource, base_url=fhir_base(request))
        return Response(mapping.as_json(bundle))


def loinc_codes(raw: str) -> set[str]:
    """The LOINC codes of a `code` token list (`39156-5`, `http://loinc.org|39156-5`, comma-separated)."""
    wanted = set()
    for token in (part.strip() for part in raw.split(",")):
        system, _, code = token.rpartition("|")
        if system and system != codes.LOINC:
            raise FhirError(f"code: only {codes.LOINC} codes are recorded, got system {system!r}.", expression=["code"])
        if code not in codes.VITAL_SIGNS_BY_LOINC:
            known = ", ".join(f"{sign.loinc} ({sign.display})" for sign in codes.VITAL_SIGNS)
            raise FhirError(f"code: {code!r} is not an observation ClinRec records ({known}).", expression=["code"])
        wanted.add(code)
    return wanted


class ObservationSearchView(FhirView):
    """`GET /fhir/Observation?patient=&code=`: the patient's height, weight and BMI."""

    permission_classes = [FhirRead]

    @extend_schema(
        summary="Search vital-signs Observations of a patient",
        parameters=[
            PATIENT_PARAMETER,
            OpenApiParameter("code", str, description="LOINC token(s), e.g. http://loinc.org|39156-5 (BMI)."),
            *SEARCH_PAGING,
        ],
        responses={200: FHIR_BUNDLE, **FHIR_READ_ERRORS},
        tags=["fhir"],
    )
    def get(self, request):
        params = request.query_params
        check_parameters(params, {"patient", "code"})
        patient = Patient.objects.filter(pk=patient_parameter(params)).first()
        wanted = loinc_codes(params["code"]) if params.get("code") else None
        observations = [] if patient is None else mapping.observation_resources(patient, loinc=wanted)
        bundle = paged_searchset(request, observations, lambda item: item, base_url=fhir_base(request))
        return Response(mapping.as_json(bundle))


class FhirWrite(BasePermission):
    """Writing patients and their procedure history: the clinician role (or admin)."""

    PERMISSIONS = ("patients.add_patient", "patients.change_patient", "procedures.add_patientprocedure")
    message = f"Your role does not allow this (needs the {', '.join(PERMISSIONS)} permissions)."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(self.PERMISSIONS))


class TransactionView(FhirView):
    """`POST /fhir/`: a transaction Bundle of Patient, Observation, Condition and Procedure, stored whole."""

    permission_classes = [FhirWrite]

    @extend_schema(
        summary="FHIR transaction (patients, vital signs, chronic pain, procedures)",
        description=(
            "Creates or updates the patients of the Bundle with their height, weight, BMI and chronic pain, "
            "and adds each completed Procedure to their history (matched to the catalogue by identifier in "
            "ClinRec's `/procedure` system or by SNOMED CT code; an unknown one is added to the catalogue when "
            "the entry gives its id, name and department and the caller's role may extend the catalogue). "
            "All or nothing: any problem is a 422 OperationOutcome naming the entry, and nothing is stored."
        ),
        request={"application/fhir+json": OpenApiTypes.OBJECT},
        responses={
            200: FHIR_BUNDLE,
            **FHIR_READ_ERRORS,
            415: OPERATION_OUTCOME,
            422: OPERATION_OUTCOME,
        },
        tags=["fhir"],
    )
    def post(self, request):
        bundle = ingest.apply_transaction(
            body=request.data, may_extend_catalogue=request.user.has_perm("procedures.add_procedure")
        )
        return Response(mapping.as_json(bundle))


class FhirNotFoundView(FhirView):
    """Any other `/fhir/` path: an OperationOutcome 404 (the server does not support it)."""

    permission_classes = []
    authentication_classes = []

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise FhirError(
            f"ClinRec's FHIR server has no endpoint at {request.path} (see /fhir/metadata).",
            status_code=404,
            issue_code="not-supported",
        )

    get = post = put = patch = delete = http_method_not_allowed  # type: ignore[assignment]
