from django.apps import AppConfig
from django.http import JsonResponse


class InteropConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "interop"
    verbose_name = "Interoperability (FHIR, CDS Hooks)"

    def ready(self) -> None:
        # Registers the OpenAPI description of the CDS Hooks JWT authentication with drf-spectacular.
        # Errors that never reach a view (an unknown path, a refused query parameter, a server error) speak the
        # client's language too: an OperationOutcome under /fhir, JSON under /cds-services.
        from clinrec.exceptions import register_error_renderer
        from interop import openapi  # noqa: F401
        from interop.fhir.http import operation_outcome_response

        register_error_renderer("/fhir", operation_outcome_response)
        register_error_renderer(
            "/cds-services", lambda status, message: JsonResponse({"detail": message}, status=status)
        )
