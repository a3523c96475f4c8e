"""JSON shapes of CDS Hooks 2.0: the hook request ClinRec validates, the cards it answers, the feedback it takes."""

from __future__ import annotations

from rest_framework import serializers

from clinrec.identifiers import FhirIdField
from interop.models import FeedbackOutcome


class FhirAuthorizationSerializer(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.ChoiceField(choices=["Bearer"])
    expires_in = serializers.IntegerField(min_value=0)
    scope = serializers.CharField()
    subject = serializers.CharField()


class HookRequestSerializer(serializers.Serializer):
    """A CDS Hooks request; the view checks `hook` and the context fields against the service called."""

    hook = serializers.CharField()
    hookInstance = serializers.CharField(max_length=255)
    context = serializers.DictField()
    prefetch = serializers.DictField(required=False, allow_null=True)
    fhirServer = serializers.URLField(required=False)
    fhirAuthorization = FhirAuthorizationSerializer(required=False, allow_null=True)

    def validate_context(self, context: dict) -> dict:
        service = self.context["service"]
        missing = [name for name in service.context if not context.get(name)]
        if missing:
            raise serializers.ValidationError(f"{', '.join(missing)} required by the {service.hook} hook.")
        patient_id = FhirIdField().run_validation(str(context["patientId"]))
        return {**context, "patientId": patient_id}

    def validate(self, attrs: dict) -> dict:
        service = self.context["service"]
        if attrs["hook"] != service.hook:
            raise serializers.ValidationError(
                {"hook": f"The {service.id} service answers the {service.hook} hook, not {attrs['hook']!r}."}
            )
        if attrs.get("fhirAuthorization") and not attrs.get("fhirServer"):
            raise serializers.ValidationError({"fhirServer": "Required when fhirAuthorization is given."})
        return attrs


class CodingSerializer(serializers.Serializer):
    system = serializers.CharField()
    code = serializers.CharField()
    display = serializers.CharField(required=False)


class SourceSerializer(serializers.Serializer):
    label = serializers.CharField()
    topic = CodingSerializer()


class ActionSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["create", "update", "delete"])
    description = serializers.CharField()
    resource = serializers.DictField(help_text="The proposed FHIR ServiceRequest.")


class SuggestionSerializer(serializers.Serializer):
    label = serializers.CharField()
    uuid = serializers.UUIDField()
    isRecommended = serializers.BooleanField()
    actions = ActionSerializer(many=True)


class CardSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    summary = serializers.CharField(max_length=139)
    detail = serializers.CharField(help_text="Markdown: the programme, the reason with its facts, any active record.")
    indicator = serializers.ChoiceField(choices=["info", "warning", "critical"])
    source = SourceSerializer()
    suggestions = SuggestionSerializer(many=True)
    selectionBehavior = serializers.ChoiceField(choices=["at-most-one", "any"])


class CardsSerializer(serializers.Serializer):
    cards = CardSerializer(many=True)


class DiscoveryServiceSerializer(serializers.Serializer):
    id = serializers.CharField()
    hook = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    prefetch = serializers.DictField(child=serializers.CharField())
    usageRequirements = serializers.CharField()


class DiscoverySerializer(serializers.Serializer):
    services = DiscoveryServiceSerializer(many=True)


class AcceptedSuggestionSerializer(serializers.Serializer):
    id = serializers.UUIDField()


class OverrideReasonSerializer(serializers.Serializer):
    reason = CodingSerializer(required=False)
    userComment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class FeedbackItemSerializer(serializers.Serializer):
    card = serializers.UUIDField()
    outcome = serializers.ChoiceField(choices=FeedbackOutcome.choices)
    acceptedSuggestions = AcceptedSuggestionSerializer(many=True, required=False, default=list)
    overrideReason = OverrideReasonSerializer(required=False, allow_null=True)
    outcomeTimestamp = serializers.DateTimeField()

    def validate(self, attrs: dict) -> dict:
        if attrs["outcome"] == FeedbackOutcome.OVERRIDDEN and attrs.get("acceptedSuggestions"):
            raise serializers.ValidationError({"acceptedSuggestions": "An overridden card accepts no suggestion."})
        if attrs["outcome"] == FeedbackOutcome.ACCEPTED and attrs.get("overrideReason"):
            raise serializers.ValidationError({"overrideReason": "Only an overridden card has an override reason."})
        return attrs


class FeedbackSerializer(serializers.Serializer):
    feedback = FeedbackItemSerializer(many=True, allow_empty=False)


class CdsFeedbackCountSerializer(serializers.Serializer):
    """Per recommendation: cards shown, accepted, overridden, and why clinicians overrode it most often."""

    recommendation = serializers.CharField()
    name = serializers.CharField()
    cards_shown = serializers.IntegerField()
    accepted = serializers.IntegerField()
    overridden = serializers.IntegerField()
    top_override_reasons = serializers.ListField(child=serializers.DictField())
