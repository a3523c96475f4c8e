from django.apps import AppConfig


class InteropConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "interop"
    verbose_name = "Interoperability (FHIR, CDS Hooks)"

    def ready(self) -> None:
        # Registers the OpenAPI description of the CDS Hooks JWT authentication with drf-spectacular.
        from interop import openapi  # noqa: F401
