"""Recommendation definitions, patient recommendations, rule sets, evaluation (and dry runs), events, analytics."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from clinrec.exceptions import Conflict
from clinrec.openapi import BAD_REQUEST, NOT_FOUND, READ_ERRORS, ErrorSerializer, resource_schema
from clinrec.viewsets import FHIR_LOOKUP_REGEX, ResourceViewSet, no_such_id
from patients.models import Patient
from patients.tombstones import GONE
from recommendations import selectors, services
from recommendations.filters import PatientRecommendationFilter, RecommendationCountFilter, RecommendationEventFilter
from recommendations.models import PatientRecommendation, PopulationRun, Recommendation, RuleSet
from recommendations.serializers import (
    ActivationSerializer,
    EvaluationSerializer,
    PatientRecommendationSerializer,
    PopulationRunRequestSerializer,
    PopulationRunSerializer,
    RecommendationCountSerializer,
    RecommendationEventSerializer,
    RecommendationSerializer,
    RuleSetImpactSerializer,
    RuleSetSerializer,
)
from security.permissions import requires_permission

MANAGE_RULE_SETS = "recommendations.change_ruleset"


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
        serializer.instance, _event = services.record_manual_recommendation(
            patient=data["patient"],
            recommendation=data["recommendation"],
            recorded_by=self.request.user,
            via="api",
            source=data.get("source", "manual"),
            reason=data.get("reason", ""),
            at=data.get("recommended_at"),
            status=data.get("status", "active"),
        )

    @transaction.atomic
    def perform_update(self, serializer):
        previous = serializer.instance.status
        super().perform_update(serializer)
        # Dismissed or completed: an event tells the order systems (HL7 v2 ORC CA / SC, the FHIR push).
        services.change_recommendation_status(link=serializer.instance, previous=previous)


class EvaluateQuerySerializer(serializers.Serializer):
    """The query of `evaluate/`: a dry run, optionally against another rule-set version."""

    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="true: answer what would be recommended; record nothing."
    )
    rule_set = serializers.IntegerField(
        required=False, min_value=1, help_text="With dry_run=true: the rule-set version to evaluate against."
    )

    def validate(self, attrs):
        if "rule_set" in attrs and not attrs["dry_run"]:
            raise ValidationError(
                {"rule_set": ["Only the active version records; add dry_run=true to evaluate against another."]}
            )
        if "rule_set" in attrs:
            version = attrs["rule_set"]
            attrs["rule_set"] = RuleSet.objects.filter(version=version).first()
            if attrs["rule_set"] is None:
                raise ValidationError({"rule_set": [f"No rule-set version {version}."]})
        return attrs


class EvaluatePatientView(APIView):
    """`POST /api/v1/patients/{id}/evaluate/`: run the recommendation engine on one patient (or a dry run).

    Each new recommendation is recorded with its provenance and announced; one still active is reported with
    `new: false`. Add `?dry_run=true` to see the answer without recording anything. Press **POST** below.
    """

    permission_classes = [requires_permission("patients.evaluate_patient")]

    def http_method_not_allowed(self, request, *args, **kwargs):
        # In the browsable API a GET (following a link) shows this page with its POST button instead of an
        # error; any other client still gets 405 with `Allow: POST`.
        if request.method == "GET" and isinstance(request.accepted_renderer, BrowsableAPIRenderer):
            return Response({"detail": "POST to this URL evaluates the patient; GET does nothing."})
        return super().http_method_not_allowed(request, *args, **kwargs)

    @extend_schema(
        summary="Evaluate a patient",
        description=(
            "Runs the recommendation engine (the active rule set) on the patient's current data. Each new "
            "recommendation is recorded with its provenance and an event, published after the commit; one still "
            "active is reported with `new: false` and creates nothing. When no rule fires, `recommendations` is "
            'empty and `message` is "Nothing to recommend". With `?dry_run=true` the same answer comes back with '
            '`"dry_run": true` and nothing is recorded or published; `&rule_set=<version>` evaluates against '
            "another version (only with dry_run). Needs the clinician or admin role."
        ),
        request=None,
        parameters=[EvaluateQuerySerializer],
        responses={200: EvaluationSerializer, **READ_ERRORS, 400: BAD_REQUEST, 404: NOT_FOUND, 410: GONE},
        tags=["patients"],
    )
    def post(self, request, pk: str):
        query = EvaluateQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = query.validated_data
        try:
            if no_such_id(pk):
                raise Patient.DoesNotExist
            if options["dry_run"]:
                evaluation = services.preview_patient(patient_id=pk, rule_set=options.get("rule_set"))
            else:
                evaluation = services.evaluate_patient(patient_id=pk)
        except Patient.DoesNotExist:
            raise Http404(f"No patient with id {pk!r}.") from None
        return Response(EvaluationSerializer(evaluation).data)


@extend_schema_view(
    list=extend_schema(summary="List rule-set versions", responses={200: RuleSetSerializer(many=True), **READ_ERRORS}),
    retrieve=extend_schema(
        summary="Get one rule-set version", responses={200: RuleSetSerializer, **READ_ERRORS, 404: NOT_FOUND}
    ),
    create=extend_schema(
        summary="Create a rule-set version",
        description=(
            "Saves a new, inactive version: the given parameters over the active version's. A value outside "
            "the registry's bounds is a 400 naming it (e.g. `parameters.weight_management.min_bmi`). Admin role."
        ),
        responses={201: RuleSetSerializer, **READ_ERRORS, 400: BAD_REQUEST},
    ),
)
class RuleSetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Versions of the rules' parameters: every role reads them, the admin role creates and activates them.

    Versions are never edited or deleted, so a recommendation's provenance always names thresholds that exist.
    Not cached: reads are small, and an activation must show at once.
    """

    queryset = selectors.rule_set_list()
    serializer_class = RuleSetSerializer
    lookup_field = "version"
    lookup_value_regex = r"[0-9]+"

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.create_rule_set(
            parameters=data["parameters"], created_by=self.request.user, note=data.get("note", "")
        )

    @extend_schema(
        summary="Activate a rule-set version",
        description=(
            "Makes this version the one every evaluation uses from now on, recording who, when and `reason` "
            "(required). Past recommendations keep their provenance. Admin role."
        ),
        request=ActivationSerializer,
        responses={
            200: RuleSetSerializer,
            **READ_ERRORS,
            400: BAD_REQUEST,
            404: NOT_FOUND,
            409: OpenApiResponse(ErrorSerializer, description="Already the active version."),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[requires_permission(MANAGE_RULE_SETS)])
    def activate(self, request, version: str):
        rule_set = self.get_object()
        body = ActivationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rule_set = services.activate_rule_set(
                rule_set=rule_set, activated_by=request.user, reason=body.validated_data["reason"]
            )
        except services.RuleSetError as exc:
            if exc.field == "version":
                raise Conflict(exc.message) from None
            raise ValidationError({exc.field: [exc.message]}) from None
        return Response(RuleSetSerializer(rule_set).data, status=status.HTTP_200_OK)

    @extend_schema(
        summary="Impact of a rule-set version",
        description=(
            "Over the current population: the recommendations this version would add and those the active "
            "version makes that it would no longer make, counted per recommendation with a sample of patient "
            "ids. Nothing is recorded. Admin role."
        ),
        parameters=[OpenApiParameter("sample", OpenApiTypes.INT, description="Patient ids per sample (0-100).")],
        responses={200: RuleSetImpactSerializer, **READ_ERRORS, 400: BAD_REQUEST, 404: NOT_FOUND},
    )
    @action(detail=True, methods=["get"], permission_classes=[requires_permission(MANAGE_RULE_SETS)])
    def impact(self, request, version: str):
        rule_set = self.get_object()
        sample = serializers.IntegerField(min_value=0, max_value=100)
        raw = request.query_params.get("sample", services.impact.DEFAULT_SAMPLE_SIZE)
        try:
            sample_size = sample.run_validation(raw)
        except ValidationError as exc:
            raise ValidationError({"sample": exc.detail}) from None
        impact = services.rule_set_impact(rule_set=rule_set, sample_size=sample_size)
        return Response(RuleSetImpactSerializer(impact).data)


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


@extend_schema_view(
    retrieve=extend_schema(
        summary="Follow a population evaluation",
        description="Status, progress (done/total), new recommendations per definition, errors and timings.",
        responses={200: PopulationRunSerializer, **READ_ERRORS, 404: NOT_FOUND},
    ),
    list=extend_schema(
        summary="List population evaluations", responses={200: PopulationRunSerializer(many=True), **READ_ERRORS}
    ),
)
class PopulationRunViewSet(mixins.RetrieveModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Population evaluations: every patient (or a list) evaluated set-wise, in chunks run by the workers.

    Not cached: a run's progress changes in the workers.
    """

    queryset = PopulationRun.objects.all()
    serializer_class = PopulationRunSerializer

    @extend_schema(
        summary="Evaluate the population",
        description=(
            "Starts a set-wise evaluation of every patient (or of `patients`) with the active rule set and answers "
            "202 with the run and its `Location`; the chunks run on the Celery workers (embedded: before the "
            "answer). New recommendations get their provenance and a pending event, which the outbox relay "
            "publishes. An unknown patient id is a 400 naming it. Admin role."
        ),
        request=PopulationRunRequestSerializer,
        responses={202: PopulationRunSerializer, **READ_ERRORS, 400: BAD_REQUEST},
    )
    def create(self, request):
        query = PopulationRunRequestSerializer(data=request.data)
        query.is_valid(raise_exception=True)
        patient_ids = query.validated_data.get("patients")
        if patient_ids is not None and (unknown := selectors.unknown_patient_ids(patient_ids)):
            raise ValidationError({"patients": [f"No patient with id {', '.join(map(repr, unknown[:20]))}."]})
        run, chunks = services.start_population_run(
            patient_ids=patient_ids,
            chunk_size=query.validated_data.get("chunk", settings.POPULATION_CHUNK_SIZE),
            requested_by=request.user,
        )
        services.dispatch_population_run(run=run, chunks=chunks)
        location = reverse("population-run-detail", kwargs={"pk": run.pk}, request=request)
        return Response(
            PopulationRunSerializer(run).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
        )
