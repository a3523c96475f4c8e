"""What the CDS Hooks service keeps: the EHR issuers it trusts, JWT ids already seen, cards issued and feedback."""

from __future__ import annotations

from uuid import uuid4

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone


class CdsIssuer(models.Model):
    """An EHR allowed to call the CDS services: its `iss`, its public keys, and which services it may call."""

    issuer = models.CharField(max_length=255, unique=True, help_text="The `iss` claim of the EHR's JWTs.")
    jwks_url = models.URLField(blank=True, default="", help_text="Where the EHR publishes its JWK Set.")
    jwks = models.JSONField(
        null=True, blank=True, help_text='Inline JWK Set (`{"keys": [...]}`), used instead of the URL when set.'
    )
    allowed_services = models.JSONField(
        default=list, blank=True, help_text='CDS service ids this EHR may call, e.g. ["patient-view"]; empty: all.'
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["issuer"]
        verbose_name = "CDS Hooks issuer"

    def __str__(self) -> str:
        return self.issuer

    def clean(self) -> None:
        if not self.jwks_url and not self.jwks:
            raise ValidationError("Give the issuer's JWKS URL or its JWK Set inline.")
        if self.jwks is not None and not (isinstance(self.jwks, dict) and isinstance(self.jwks.get("keys"), list)):
            raise ValidationError({"jwks": 'A JWK Set is an object with a "keys" list.'})
        if not isinstance(self.allowed_services, list) or not all(isinstance(s, str) for s in self.allowed_services):
            raise ValidationError({"allowed_services": "A list of CDS service ids."})

    def may_call(self, service_id: str) -> bool:
        return not self.allowed_services or service_id in self.allowed_services


class SeenJwtId(models.Model):
    """A `jti` already used by an issuer, kept until its token expires so that a replay is refused."""

    issuer = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="cds_jti_once_per_issuer")]

    def __str__(self) -> str:
        return f"{self.issuer} {self.jti}"


class IssuedCard(models.Model):
    """A card ClinRec returned to an EHR, remembered so that feedback can refer to it and its suggestion."""

    uuid = models.UUIDField(primary_key=True, default=uuid4)
    suggestion_uuid = models.UUIDField(unique=True, default=uuid4)
    service = models.CharField(max_length=64)
    hook_instance = models.CharField(max_length=255)
    # The EHR's patient id; not a foreign key: the patient may be one ClinRec has never stored.
    patient_id = models.CharField(max_length=64, db_index=True)
    recommendation = models.ForeignKey(
        "recommendations.Recommendation", on_delete=models.PROTECT, related_name="cds_cards"
    )
    rule = models.CharField(max_length=64)
    reason = models.TextField()
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-issued_at"]
        verbose_name = "issued CDS card"

    def __str__(self) -> str:
        return f"card {self.uuid} {self.recommendation_id} for {self.patient_id}"


class FeedbackOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    OVERRIDDEN = "overridden", "Overridden"


class CdsFeedback(models.Model):
    """What the clinician did with a card: accepted (and what that recorded) or overridden (and why)."""

    card = models.ForeignKey(IssuedCard, on_delete=models.PROTECT, related_name="feedback")
    outcome = models.CharField(max_length=10, choices=FeedbackOutcome.choices)
    outcome_timestamp = models.DateTimeField()
    accepted_suggestions = models.JSONField(default=list, blank=True)
    override_reason = models.JSONField(null=True, blank=True, help_text="The EHR's overrideReason, as sent.")
    override_reason_text = models.CharField(max_length=255, blank=True, default="")
    patient_recommendation = models.ForeignKey(
        "recommendations.PatientRecommendation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cds_feedback",
    )
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "CDS card feedback"
        verbose_name_plural = "CDS card feedback"
        constraints = [
            models.CheckConstraint(condition=models.Q(outcome__in=FeedbackOutcome.values), name="cds_outcome_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} for card {self.card_id}"
