"""Admin page of the EHR issuers the CDS Hooks service trusts: administrators register them here."""

from django.contrib import admin
from django.db import models

from interop.models import CdsIssuer


@admin.register(CdsIssuer)
class CdsIssuerAdmin(admin.ModelAdmin):
    list_display = ["issuer", "jwks_url", "has_inline_jwks", "allowed_services", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["issuer", "jwks_url"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(boolean=True, description="inline JWKS")
    def has_inline_jwks(self, obj: CdsIssuer) -> bool:
        return bool(obj.jwks)
