"""Recommendation definitions, patient recommendations, evaluation, events and analytics endpoints."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from clinrec.openapi import BAD_REQUEST, NOT_FOUND, READ_ERRORS, resource_schema
from clinrec.viewsets import FHIR_LOOKUP_REGEX, ResourceViewSet, no_such_id
from patients.models import Patient
from recommendations import selectors, services
from recommendations.filters import PatientRecommendationFilter, RecommendationCountFilter, RecommendationEventFilter
from recommendations.models import PatientRecommendation, Recommendation
from recommendations.serializers import (
    EvaluationSerializer,
    PatientRecommendationSerializer,
    RecommendationCountSerializer,
    RecommendationEventSerializer,
    RecommendationSerializer,
)
from security.permissions import requires_permission


@resource_schema("recommendation definition", "recommendation definitions")
class RecommendationViewSet(ResourceViewSet):
    """The catalogue of care programmes ClinRec can recommend."""

    queryset = Recommendation.objects.all()
    serializer_class = RecommendationSerializer
    lookup_value_regex = FHIR_LOOKUP_REGEX
    filterset_fields = ["rule"]


@resource_schema("patient recommendation", "patient recommendations", expandable=("patient", "recommendation"))
class PatientRecommendationViewSet(ResourceViewSet):
    """Recommendations made to patients, by the engine (`source=rule`) or by hand (`manual`), and their status.

    Creating one by hand publishes an event, as the engine's do.
    """

    queryset = PatientRecommendation.objects.all()
    serializer_class = PatientRecommendationSerializer
    filterset_class = PatientRecommendationFilter
    expandable = ("patient", "recommendation")
    cache_models = (PatientRecommendation, Patient, Recommendation)

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance, _event = services.record_recommendation(
            patient=data["patient"],
            recommendation=data["recommendation"],
            source=data.get("source", "manual"),
            reason=data.get("reason", ""),
            at=data.get("recommended_at"),
            status=data.get("status", "active"),
        )


class EvaluatePatientView(APIView):
    """`POST /api/v1/patients/{id}/evaluate/`: run the recommendation engine on one patient."""

    permission_classes = [requires_permission("patients.evaluate_patient")]

    @extend_schema(
        summary="Evaluate a patient",
        description=(
            "Runs the recommendation engine on the patient's current data. Each new recommendation is recorded "
            "with an event, published after the commit; one still active is reported with `new: false` and "
            "creates nothing. When no rule fires, `recommendations` is empty and `message` is "
            '"Nothing to recommend". Needs the clinician or admin role.'
        ),
        request=None,
        responses={200: EvaluationSerializer, **READ_ERRORS, 404: NOT_FOUND},
        tags=["patients"],
    )
    def post(self, request, pk: str):
        try:
            if no_such_id(pk):
                raise Patient.DoesNotExist
            evaluation = services.evaluate_patient(patient_id=pk)
        except Patient.DoesNotExist:
            raise Http404(f"No patient with id {pk!r}.") from None
        return Response(EvaluationSerializer(evaluation).data)


@extend_schema_view(
    list=extend_schema(
        summary="List recommendation events",
        responses={200: RecommendationEventSerializer(many=True), **READ_ERRORS, 400: BAD_REQUEST},
    ),
    retrieve=extend_schema(
        summary="Get one recommendation event",
        responses={200: RecommendationEventSerializer, **READ_ERRORS, 404: NOT_FOUND},
    ),
)
class RecommendationEventViewSet(viewsets.ReadOnlyModelViewSet):
    """The event outbox, newest first: `pending` → `published` → `consumed` (or `failed`), with attempts.

    Not cached: its status changes in the worker, and support needs to see it as it is.
    """

    queryset = selectors.event_list()
    serializer_class = RecommendationEventSerializer
    filterset_class = RecommendationEventFilter


@extend_schema_view(
    list=extend_schema(
        summary="Recommendation counts per definition and day",
        responses={
            200: RecommendationCountSerializer(many=True),
            **READ_ERRORS,
            400: OpenApiResponse(description="Bad filter."),
        },
    ),
)
class RecommendationAnalyticsViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Analytics kept by the event consumer: one row per recommendation and day."""

    queryset = selectors.recommendation_counts()
    serializer_class = RecommendationCountSerializer
    filterset_class = RecommendationCountFilter
