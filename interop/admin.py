"""Admin pages: the EHR issuers CDS Hooks trusts (registered here), and the cards and feedback, read-only."""

from django.contrib import admin
from django.db import models

from interop.models import CdsFeedback, CdsIssuer, IssuedCard


@admin.register(CdsIssuer)
class CdsIssuerAdmin(admin.ModelAdmin):
    list_display = ["issuer", "jwks_url", "has_inline_jwks", "allowed_services", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["issuer", "jwks_url"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(boolean=True, description="inline JWKS")
    def has_inline_jwks(self, obj: CdsIssuer) -> bool:
        return bool(obj.jwks)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(IssuedCard)
class IssuedCardAdmin(ReadOnlyAdmin):
    list_display = ["uuid", "service", "patient_id", "recommendation", "issued_at"]
    list_filter = ["service", "recommendation"]
    search_fields = ["uuid", "patient_id", "hook_instance"]


@admin.register(CdsFeedback)
class CdsFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["card", "outcome", "override_reason_text", "patient_recommendation", "outcome_timestamp"]
    list_filter = ["outcome"]
    search_fields = ["card__uuid", "card__patient_id", "override_reason_text"]
