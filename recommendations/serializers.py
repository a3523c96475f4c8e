"""JSON shapes of definitions, patient recommendations, evaluations, events and analytics."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from clinrec.identifiers import FhirIdField
from clinrec.serializers import CallerIdentifiedModelSerializer, ExpandableModelSerializer
from patients.serializers import PatientSerializer
from recommendations.models import (
    PatientRecommendation,
    Recommendation,
    RecommendationDailyCount,
    RecommendationEvent,
    RecommendationStatus,
)


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
    rule = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        validators=[
            UniqueValidator(
                queryset=Recommendation.objects.all(), message="Another recommendation already has this rule."
            )
        ],
        help_text="The engine rule that yields it (physical_therapy, weight_management, post_op_rehab), or null.",
    )

    class Meta:
        model = Recommendation
        fields = ["id", "name", "description", "rule"]

    def validate_rule(self, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class PatientRecommendationSerializer(ExpandableModelSerializer):
    """A recommendation made to a patient; `?expand=patient,recommendation` nests both."""

    expand_serializers = {"patient": PatientSerializer, "recommendation": RecommendationSerializer}

    class Meta:
        model = PatientRecommendation
        fields = ["id", "patient", "recommendation", "recommended_at", "source", "reason", "status"]
        extra_kwargs = {"recommended_at": {"required": False}}
        # The one-active-per-patient rule is checked in validate() with a message that says what to do.
        validators = []

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
    patient_recommendation = serializers.IntegerField(help_text="Id of the patient recommendation link.")
    new = serializers.BooleanField(help_text="False when the recommendation was already active.")
    event = serializers.IntegerField(allow_null=True, help_text="Id of the event published, null when not new.")


class EvaluationSerializer(serializers.Serializer):
    """The outcome of `POST /patients/{id}/evaluate/`."""

    patient = serializers.CharField()
    evaluated_at = serializers.DateTimeField()
    recommendations = EvaluatedRecommendationSerializer(many=True)
    message = serializers.CharField(required=False, help_text='"Nothing to recommend" when no rule fired.')

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if data.get("message") is None:
            data.pop("message", None)
        return data


class RecommendationEventSerializer(serializers.ModelSerializer):
    """An outbox event and where it is in its life: pending, published, consumed or failed."""

    patient = serializers.CharField(source="patient_id", read_only=True)
    recommendation = serializers.CharField(source="recommendation_id", read_only=True)

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
