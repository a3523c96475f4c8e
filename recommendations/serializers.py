"""JSON shapes of definitions, patient recommendations, rule sets, evaluations, impact, events and analytics."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from clinrec.identifiers import FhirIdField
from clinrec.serializers import CallerIdentifiedModelSerializer, ExpandableModelSerializer
from patients.serializers import PatientSerializer
from patients.tombstones import validate_live_patient
from recommendations.engine import RULES, InvalidParameters, config_from_parameters, parameters_json_schema
from recommendations.models import (
    Delivery,
    PatientRecommendation,
    PopulationRun,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
    RecommendationStatus,
    RuleSet,
)
from recommendations.services.rule_sets import active_rule_set, rule_set_config

RULE_HELP = "The engine rule that yields it, one of: {}; or null for a programme only people recommend.".format(
    "; ".join(f"`{rule.key}` ({rule.recommendation_name}: {rule.fires_when})" for rule in RULES.values())
)
PROVENANCE_HELP = (
    "Why it exists. Made by the engine: `{source: rule, rule, rule_set (version), facts, engine_version}`; "
    "recorded by a person: `{source: manual, recorded_by, recorded_at, via}`. Never rewritten."
)


def nested_errors(errors: dict[str, str]) -> dict[str, Any] | list[str]:
    """Dotted error paths (`weight_management.min_bmi`) as DRF's nested error shape."""
    if set(errors) == {""}:
        return [errors[""]]
    tree: dict[str, Any] = {}
    # Sorted, so a refused parent (`else`: unknown rule) comes before its children (`else.x`), which it covers.
    for path, message in sorted(errors.items()):
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if isinstance(node, list):
                break
        else:
            node[leaf] = [message]
    return tree


@extend_schema_field(parameters_json_schema())
class RuleParametersField(serializers.JSONField):
    """The parameters of every rule, validated against the registry's types and bounds."""


class RecommendationSerializer(CallerIdentifiedModelSerializer):
    """A recommendation definition (a care programme); `rule` ties it to the engine rule that yields it."""

    id = FhirIdField(
        validators=[
            UniqueValidator(
                queryset=Recommendation.objects.all(), message="A recommendation with this id already exists."
            )
        ],
        help_text="Definition id, e.g. por-123 (FHIR id syntax).",
    )
    rule = serializers.ChoiceField(
        choices=list(RULES),
        required=False,
        allow_null=True,
        allow_blank=True,
        validators=[
            UniqueValidator(
                queryset=Recommendation.objects.all(), message="Another recommendation already has this rule."
            )
        ],
        help_text=RULE_HELP,
    )
    manual_only = serializers.BooleanField(
        read_only=True, help_text="True when no rule yields it: only a person recommends it."
    )

    class Meta:
        model = Recommendation
        fields = ["id", "name", "description", "rule", "manual_only"]

    def validate_rule(self, value: str | None) -> str | None:
        return value or None


class PatientRecommendationSerializer(ExpandableModelSerializer):
    """A recommendation made to a patient; `?expand=patient,recommendation` nests both."""

    expand_serializers = {"patient": PatientSerializer, "recommendation": RecommendationSerializer}

    class Meta:
        model = PatientRecommendation
        fields = ["id", "patient", "recommendation", "recommended_at", "source", "reason", "status", "provenance"]
        read_only_fields = ["provenance"]
        extra_kwargs = {"recommended_at": {"required": False}, "provenance": {"help_text": PROVENANCE_HELP}}
        # The one-active-per-patient rule is checked in validate() with a message that says what to do.
        validators = []

    def validate_patient(self, value):
        return validate_live_patient(value)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        instance = self.instance
        patient = attrs.get("patient", getattr(instance, "patient", None))
        recommendation = attrs.get("recommendation", getattr(instance, "recommendation", None))
        status = attrs.get("status", getattr(instance, "status", RecommendationStatus.ACTIVE))
        if status == RecommendationStatus.ACTIVE and patient is not None and recommendation is not None:
            clash = PatientRecommendation.objects.filter(
                patient=patient, recommendation=recommendation, status=RecommendationStatus.ACTIVE
            )
            if instance is not None:
                clash = clash.exclude(pk=instance.pk)
            existing = clash.values_list("pk", flat=True).first()
            if existing is not None:
                raise serializers.ValidationError(
                    {
                        "recommendation": [
                            f"Patient {patient.pk} already has {recommendation.pk} active "
                            f"(patient recommendation {existing}); complete or dismiss it first."
                        ]
                    }
                )
        return attrs


class EvaluatedRecommendationSerializer(serializers.Serializer):
    recommendation = serializers.CharField(help_text="Definition id.")
    name = serializers.CharField()
    rule = serializers.CharField()
    reason = serializers.CharField(help_text="The facts that made the rule fire.")
    patient_recommendation = serializers.IntegerField(
        allow_null=True, help_text="Id of the patient recommendation link; null in a dry run when it would be new."
    )
    new = serializers.BooleanField(help_text="False when the recommendation was already active.")
    event = serializers.IntegerField(allow_null=True, help_text="Id of the event published, null when not new.")
    provenance = serializers.DictField(help_text="Rule, rule-set version, the facts it used and the engine version.")


class EvaluationSerializer(serializers.Serializer):
    """The outcome of `POST /patients/{id}/evaluate/`."""

    patient = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    recommendations = EvaluatedRecommendationSerializer(many=True)
    message = serializers.CharField(required=False, help_text='"Nothing to recommend" when no rule fired.')
    dry_run = serializers.BooleanField(required=False, help_text="Present (true) on a dry run: nothing was recorded.")
    rule_set = serializers.IntegerField(required=False, help_text="On a dry run: the rule-set version evaluated.")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("message") is None:
            data.pop("message", None)
        if not data.get("dry_run"):
            data.pop("dry_run", None)
            data.pop("rule_set", None)
        return data


class RuleSetSerializer(serializers.ModelSerializer):
    """A version of the rules' parameters. Created inactive; activated by `POST .../{version}/activate/`."""

    parameters = RuleParametersField(
        help_text=(
            "Per rule, `enabled` and its parameters. On create, rules and parameters left out keep the active "
            "version's values."
        )
    )
    # null when the user was deleted or the version came from a migration (the schema must say so).
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    activated_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = RuleSet
        fields = [
            "version",
            "active",
            "parameters",
            "note",
            "created_by",
            "created_at",
            "activated_by",
            "activated_at",
            "activation_reason",
        ]
        read_only_fields = [
            "version",
            "active",
            "created_by",
            "created_at",
            "activated_by",
            "activated_at",
            "activation_reason",
        ]

    def validate_parameters(self, value: Any) -> Any:
        try:
            config_from_parameters(value, base=rule_set_config(active_rule_set()))
        except InvalidParameters as exc:
            raise serializers.ValidationError(nested_errors(exc.errors)) from None
        return value


class ActivationSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="Why this version becomes the active one (kept with the activation).")


class ChangeSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.CharField(), help_text="Ids of some of the patients.")


class RecommendationImpactSerializer(serializers.Serializer):
    recommendation = serializers.CharField(allow_null=True, help_text="Definition id.")
    name = serializers.CharField()
    rule = serializers.CharField()
    would_add = ChangeSerializer(help_text="Patients this version would recommend it to, the active one not.")
    would_no_longer_make = ChangeSerializer(help_text="Patients the active version recommends it to, this one not.")
    unchanged = serializers.IntegerField(help_text="Patients both versions recommend it to.")


class RuleSetImpactSerializer(serializers.Serializer):
    """What activating a version would change, over the current population."""

    version = serializers.IntegerField()
    compared_with = serializers.IntegerField(help_text="The active version.")
    evaluated_at = serializers.DateTimeField()
    patients = serializers.IntegerField(help_text="Patients evaluated.")
    recommendations = RecommendationImpactSerializer(many=True)


class DeliverySerializer(serializers.ModelSerializer):
    """One consumer's delivery of an event: pending, delivered or failed, with its attempts and last error."""

    class Meta:
        model = Delivery
        fields = ["consumer", "status", "attempts", "last_error", "delivered_at"]
        read_only_fields = fields


class RecommendationEventSerializer(serializers.ModelSerializer):
    """An outbox event and where it is in its life: pending, published, consumed or failed; and its deliveries."""

    patient = serializers.CharField(source="patient_id", read_only=True)
    recommendation = serializers.CharField(source="recommendation_id", read_only=True)
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = RecommendationEvent
        fields = [
            "id",
            "event_type",
            "patient",
            "recommendation",
            "patient_recommendation",
            "status",
            "attempts",
            "last_error",
            "payload",
            "created_at",
            "published_at",
            "consumed_at",
            "deliveries",
        ]
        read_only_fields = fields


class RecommendationCountSerializer(serializers.ModelSerializer):
    """Analytics: how many recommendations of one definition were made on one day."""

    recommendation = serializers.CharField(source="recommendation_id", read_only=True)
    name = serializers.CharField(source="current_name", read_only=True)

    class Meta:
        model = RecommendationDailyCount
        fields = ["recommendation", "name", "day", "count"]
        read_only_fields = fields


class PopulationRunRequestSerializer(serializers.Serializer):
    """`POST /api/v1/evaluations/`: which patients (default: everyone) and how many per chunk."""

    patients = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, allow_empty=False, max_length=1_000_000
    )
    chunk = serializers.IntegerField(required=False, min_value=1, max_value=100_000)


class PopulationRunSerializer(serializers.ModelSerializer):
    """A population evaluation and how far it got."""

    progress = serializers.SerializerMethodField()

    class Meta:
        model = PopulationRun
        fields = [
            "id",
            "status",
            "progress",
            "evaluated_at",
            "rule_set",
            "chunk_size",
            "chunks",
            "chunks_done",
            "counts",
            "errors",
            "timings",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}},
            "required": ["done", "total"],
        }
    )
    def get_progress(self, run: PopulationRun) -> dict:
        return {"done": run.done, "total": run.total}
