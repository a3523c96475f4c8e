"""The CDS Hooks 2.0 endpoints: discovery, the services, feedback; and the feedback analytics under /api/v1/."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from clinrec.openapi import BAD_REQUEST, NOT_FOUND, READ_ERRORS, ErrorSerializer
from interop import selectors
from interop.cds import hooks, services
from interop.cds.auth import CdsHooksJWTAuthentication, EhrClient
from interop.cds.serializers import (
    CardsSerializer,
    CdsFeedbackCountSerializer,
    DiscoverySerializer,
    FeedbackSerializer,
    HookRequestSerializer,
)
from security.authentication import SnapshotJWTAuthentication
from security.permissions import requires_permission

PRECONDITION_FAILED = OpenApiResponse(
    ErrorSerializer, description="No complete prefetch and the patient is unknown to ClinRec."
)


class CdsCaller(BasePermission):
    """An EHR whose issuer may call this service, or a ClinRec user whose role allows `needs`."""

    needs = "patients.view_patient"
    message = "Not allowed to call this CDS service."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if isinstance(user, EhrClient):
            service_id = view.kwargs.get("service_id")
            if service_id and not user.issuer.may_call(service_id):
                self.message = f"Issuer {user.issuer.issuer!r} is not allowed to call the {service_id} service."
                return False
            return True
        if not (user and user.is_authenticated):
            return False
        self.message = f"Your role does not allow this (needs the {self.needs} permission)."
        return user.has_perm(self.needs)


class CdsFeedbackCaller(CdsCaller):
    needs = "recommendations.add_patientrecommendation"


class CdsView(APIView):
    authentication_classes = [CdsHooksJWTAuthentication, SnapshotJWTAuthentication, SessionAuthentication]
    permission_classes = [CdsCaller]

    def service(self, service_id: str) -> hooks.CdsService:
        service = hooks.SERVICES.get(service_id)
        if service is None:
            raise NotFound(f"No CDS service {service_id!r}; GET /cds-services lists them.")
        return service


class DiscoveryView(CdsView):
    """`GET /cds-services`: the CDS services ClinRec offers, with their hooks and prefetch templates."""

    @extend_schema(
        summary="CDS Hooks discovery",
        responses={200: DiscoverySerializer, **READ_ERRORS},
        tags=["cds-hooks"],
    )
    def get(self, request):
        return Response(hooks.discovery())


class ServiceView(CdsView):
    """`POST /cds-services/{id}`: evaluate the hook's patient and answer cards; records no recommendation."""

    @extend_schema(
        summary="Call a CDS service (CDS Hooks 2.0)",
        description=(
            "Evaluates the patient of `context.patientId`: the FHIR resources of a complete `prefetch` when "
            "sent (nothing stored needed), ClinRec's stored data otherwise. One card per finding, with a "
            "suggestion to create the proposed ServiceRequest. 412 when there is neither."
        ),
        request=HookRequestSerializer,
        responses={
            200: CardsSerializer,
            400: BAD_REQUEST,
            **READ_ERRORS,
            404: NOT_FOUND,
            412: PRECONDITION_FAILED,
        },
        tags=["cds-hooks"],
    )
    def post(self, request, service_id: str):
        service = self.service(service_id)
        serializer = HookRequestSerializer(data=request.data, context={"service": service})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        cards = services.issue_cards(
            service=service,
            hook_instance=data["hookInstance"],
            patient_id=data["context"]["patientId"],
            prefetch=data.get("prefetch"),
        )
        return Response({"cards": cards})


class FeedbackView(CdsView):
    """`POST /cds-services/{id}/feedback`: what the clinician did with ClinRec's cards."""

    permission_classes = [CdsFeedbackCaller]

    @extend_schema(
        summary="Feedback on CDS cards",
        description=(
            "`accepted` records the card's recommendation for a stored patient (source `cds`, with its event); "
            "`overridden` keeps the overrideReason. All items are checked before any is stored."
        ),
        request=FeedbackSerializer,
        responses={
            200: OpenApiResponse(description="Feedback stored."),
            400: BAD_REQUEST,
            **READ_ERRORS,
            404: NOT_FOUND,
        },
        tags=["cds-hooks"],
    )
    def post(self, request, service_id: str):
        service = self.service(service_id)
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.record_feedback(service=service, items=serializer.validated_data["feedback"], recorded_by=request.user)
        return Response(status=200)


class CdsFeedbackAnalyticsView(APIView):
    """`GET /api/v1/analytics/cds-feedback/`: per recommendation, cards shown, accepted, overridden, top reasons."""

    permission_classes = [requires_permission("recommendations.view_patientrecommendation")]

    @extend_schema(
        summary="CDS card feedback per recommendation",
        responses={200: CdsFeedbackCountSerializer(many=True), **READ_ERRORS},
        tags=["analytics"],
    )
    def get(self, request):
        return Response(CdsFeedbackCountSerializer(selectors.cds_feedback_counts(), many=True).data)


class CdsNotFoundView(APIView):
    """Any other path under `/cds-services/`: a JSON 404 pointing at discovery."""

    authentication_classes: list = []
    permission_classes: list = []

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise NotFound(f"No CDS Hooks endpoint at {request.path}; GET /cds-services lists the services.")

    get = post = put = patch = delete = http_method_not_allowed  # type: ignore[assignment]
