from django.apps import AppConfig


class SecurityConfig(AppConfig):
    """Authentication (JWT and sessions), user registration and the roles."""

    name = "security"
    verbose_name = "Security"
