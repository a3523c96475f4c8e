"""Admin for refresh tokens (who holds a live session, and a way to end it, never showing a token), users with
their role, and the role groups (read-only: the code defines them)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from rest_framework_simplejwt.token_blacklist.admin import OutstandingTokenAdmin as LibraryOutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from clinrec.admin import ReadOnlyAdminMixin
from security import services
from security.roles import ROLES

User = get_user_model()

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


# --- Users and their roles -------------------------------------------------------------------------------

admin.site.unregister(User)
admin.site.unregister(Group)


class RoleFilter(admin.SimpleListFilter):
    title = "role"
    parameter_name = "role"

    def lookups(self, request, model_admin):
        return [(role, role) for role in ROLES] + [("none", "no role")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.exclude(groups__name__in=ROLES)
        if self.value() in ROLES:
            return queryset.filter(groups__name=self.value())
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin with each user's role (the role groups they belong to) as a column and a filter."""

    list_display = ["username", "role", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    list_filter = [RoleFilter, "is_staff", "is_superuser", "is_active"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Role")
    def role(self, user) -> str:
        return ", ".join(sorted(group.name for group in user.groups.all() if group.name in ROLES)) or "—"


@admin.register(Group)
class RoleGroupAdmin(ReadOnlyAdminMixin, DjangoGroupAdmin):
    """The role groups, read-only: `security/roles.py` defines them and every `migrate` resets them to it."""

    CODE_OWNS_THEM = (
        "Roles are defined in the code (security/roles.py) and reset after every migrate; "
        "give a user a role on the user's page."
    )

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "subtitle": self.CODE_OWNS_THEM})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "subtitle": self.CODE_OWNS_THEM}
        return super().change_view(request, object_id, form_url, extra_context)
