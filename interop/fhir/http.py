"""The HTTP side of the FHIR endpoints: `application/fhir+json` in and out, and every error as an OperationOutcome.

`FhirView` is the base of every `/fhir/` view: it negotiates `application/fhir+json` (plain JSON too), and its
exception handler answers any error — authentication, permission, a bad parameter, an invalid resource, an
unexpected failure — with an OperationOutcome and the matching status, rolling the request back.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from fhir.resources.R4B.operationoutcome import OperationOutcome
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView, set_rollback

from interop.fhir.mapping import as_json

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class FhirJSONRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir"


class FhirJSONParser(JSONParser):
    media_type = FHIR_JSON


class FhirError(exceptions.APIException):
    """A FHIR error with its OperationOutcome issue code (`invalid`, `not-found`, `processing`, ...)."""

    status_code = status.HTTP_400_BAD_REQUEST
    issue_code = "invalid"

    def __init__(self, detail: str, *, status_code: int | None = None, issue_code: str | None = None, expression=None):
        super().__init__(detail)
        if status_code is not None:
            self.status_code = status_code
        if issue_code is not None:
            self.issue_code = issue_code
        self.expression = list(expression or [])


class UnprocessableResource(FhirError):
    """422: a resource that parses but breaks the R4B models or ClinRec's rules."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    issue_code = "processing"


# DRF exception → OperationOutcome issue code.
ISSUE_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.NotAuthenticated, "login"),
    (exceptions.AuthenticationFailed, "login"),
    (exceptions.PermissionDenied, "forbidden"),
    (exceptions.NotFound, "not-found"),
    (exceptions.MethodNotAllowed, "not-supported"),
    (exceptions.NotAcceptable, "not-supported"),
    (exceptions.UnsupportedMediaType, "not-supported"),
    (exceptions.Throttled, "throttled"),
]


def operation_outcome(message: str, *, code: str, severity: str = "error", expression=None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = list(expression)
    return as_json(OperationOutcome(issue=[issue]))


def _message(detail: Any) -> str:
    """A DRF error detail (string, list or dict of them) as one readable sentence naming each field."""
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {_message(value)}" for field, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_message(item) for item in detail)
    return str(detail)


def fhir_exception_handler(exc: Exception, context: dict) -> Response:
    """Any exception of a FHIR view as an OperationOutcome response; unexpected ones are logged and are a 500."""
    set_rollback()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, FhirError):
        body = operation_outcome(_message(exc.detail), code=exc.issue_code, expression=exc.expression)
        return Response(body, status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        code = next((code for kind, code in ISSUE_CODES if isinstance(exc, kind)), "invalid")
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(operation_outcome(_message(exc.detail), code=code), status=exc.status_code, headers=headers)
    logger.exception("Unexpected error in a FHIR view")
    return Response(
        operation_outcome("Internal server error; it has been logged.", code="exception", severity="fatal"),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


class FhirView(APIView):
    """Base of the `/fhir/` views: FHIR JSON in and out, OperationOutcome errors."""

    renderer_classes = [FhirJSONRenderer, JSONRenderer]
    parser_classes = [FhirJSONParser, JSONParser]

    def get_exception_handler(self):
        return fhir_exception_handler

    def get_authenticate_header(self, request):
        # Always a Bearer challenge, so a missing token is 401 (never 403), as the REST API does.
        return super().get_authenticate_header(request) or 'Bearer realm="api"'
