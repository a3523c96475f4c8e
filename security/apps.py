from django.apps import AppConfig
from django.db.models.signals import post_migrate


class SecurityConfig(AppConfig):
    """Authentication (JWT and sessions), user registration and the roles."""

    name = "security"
    verbose_name = "Security"

    def ready(self) -> None:
        from security import events  # noqa: F401 - connects the security event receivers
        from security.role_sync import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="security.sync_roles")
