"""Admin for refresh tokens: who holds a live session, and a way to end it, without ever showing a token."""

from __future__ import annotations

from django.contrib import admin, messages
from rest_framework_simplejwt.token_blacklist.admin import OutstandingTokenAdmin as LibraryOutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from security import services

# simplejwt registers its own admin, which shows the encoded token: anyone who can read the page could use it.
admin.site.unregister(OutstandingToken)


@admin.register(OutstandingToken)
class OutstandingTokenAdmin(LibraryOutstandingTokenAdmin):
    """Issued refresh tokens (read-only, the token itself hidden); an action revokes the selected ones."""

    list_display = ["jti", "user", "created_at", "expires_at", "revoked"]
    list_filter = ["expires_at"]
    search_fields = ["user__username", "jti"]
    exclude = ["token"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return [field.name for field in self.model._meta.fields if field.name != "token"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a read-only page: the library's shows a Save button that then answers 403

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("blacklistedtoken")

    @admin.display(boolean=True, description="revoked")
    def revoked(self, obj: OutstandingToken) -> bool:
        return hasattr(obj, "blacklistedtoken")

    @admin.action(description="Revoke the selected refresh tokens (log those sessions out)")
    def revoke(self, request, queryset) -> None:
        count = services.revoke_refresh_tokens(outstanding=queryset)
        self.message_user(request, f"{count} refresh token(s) revoked.", messages.SUCCESS)
