"""OpenAPI descriptions of the FHIR and CDS Hooks endpoints, and of the CDS Hooks JWT authentication."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

FHIR_RESOURCE = OpenApiResponse(OpenApiTypes.OBJECT, description="A FHIR R4B resource (application/fhir+json).")
FHIR_BUNDLE = OpenApiResponse(
    OpenApiTypes.OBJECT, description="A FHIR R4B searchset Bundle; a `next` link when more entries remain."
)
OPERATION_OUTCOME = OpenApiResponse(
    OpenApiTypes.OBJECT, description="A FHIR OperationOutcome whose issue names the problem."
)
FHIR_READ_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: a bad search parameter."),
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: no valid bearer token."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: your role does not allow this."),
    406: OpenApiResponse(OpenApiTypes.OBJECT, description="OperationOutcome: only FHIR JSON is served."),
}


class CdsHooksJwtScheme(OpenApiAuthenticationExtension):
    """The JWT an EHR signs with its own key (RS384/ES384) when it calls a CDS service."""

    target_class = "interop.cds.auth.CdsHooksJWTAuthentication"
    name = "cdsHooksJwt"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "CDS Hooks 2.0: a JWT signed by a registered EHR issuer (RS384 or ES384) with `iss`, `aud` (the "
                "service URL), `exp` and a fresh `jti`. ClinRec's own bearer tokens are accepted too."
            ),
        }


def fhir_operation_paths(result, generator, request, public):
    """Postprocessing hook: give FHIR operations their `$` back (`/fhir/Patient/{id}/$everything`).

    drf-spectacular simplifies a path as a regex and drops the `$`, which would document a URL that does not exist.
    """
    result["paths"] = {
        path.replace("/Patient/{id}/everything", "/Patient/{id}/$everything"): item
        for path, item in result["paths"].items()
    }
    return result
