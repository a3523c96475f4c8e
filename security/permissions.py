"""Permission classes: every API call is checked against the caller's Django model permissions (their role)."""

from rest_framework.permissions import DjangoModelPermissions, IsAuthenticated


class RoleModelPermissions(DjangoModelPermissions):
    """Django model permissions, reads included: GET needs `view_<model>`, so a user without a role reads nothing."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


def requires_permission(codename: str) -> type[IsAuthenticated]:
    """A permission class requiring one named Django permission, e.g. `patients.evaluate_patient`."""

    class HasPermission(IsAuthenticated):
        message = f"Your role does not allow this (needs the {codename} permission)."

        def has_permission(self, request, view) -> bool:
            return super().has_permission(request, view) and request.user.has_perm(codename)

    HasPermission.__name__ = f"Requires_{codename.replace('.', '_')}"
    return HasPermission
