"""One place that turns domain and database errors into the JSON error shapes of the API.

- validation problems: 400 with `{field: [message, ...]}` (DRF's shape);
- a delete blocked by a PROTECT link: 409 with `detail` and `blocked_by` (what still points at the object);
- a write that collides with existing data (a race past validation): 409 with `detail`;
- a request Django refuses before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413; too many form
  fields, a Host not in ALLOWED_HOSTS, other suspicious input: 400), as `{"detail": ...}` under /api/.
Every error response rolls the request's transaction back, so nothing is half-written.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from security.authentication import unsupported_scheme_error

logger = logging.getLogger(__name__)

BLOCKER_ID_LIMIT = 20


class Conflict(exceptions.APIException):
    """409: the request is valid but conflicts with the current state of the data."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the data."
    default_code = "conflict"


class DeleteBlocked(Conflict):
    """409: a delete refused because PROTECT links still point at the object; says which records block it."""

    def __init__(self, instance, error: ProtectedError | RestrictedError):
        blockers = error.protected_objects if isinstance(error, ProtectedError) else error.restricted_objects
        ids_by_model: dict[str, list] = defaultdict(list)
        for obj in blockers:
            ids_by_model[str(obj._meta.verbose_name_plural)].append(obj.pk)
        # One model's keys share a type, so they sort naturally (link 9 before link 10) and the cap keeps the lowest.
        blocked_by = {
            label: {"count": len(ids), "ids": sorted(ids)[:BLOCKER_ID_LIMIT]} for label, ids in ids_by_model.items()
        }
        counts = ", ".join(f"{entry['count']} {label}" for label, entry in blocked_by.items())
        message = (
            f"Cannot delete {instance._meta.verbose_name} '{instance.pk}': it is still referenced by {counts}. "
            "Delete or reassign those first."
        )
        super().__init__(message, code="protected")
        self.body = {"detail": message, "code": "protected", "blocked_by": blocked_by}


class PayloadTooLarge(exceptions.APIException):
    """413: the body is larger than the server accepts."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def refused_request(exc: SuspiciousOperation) -> tuple[int, str]:
    """Status and message for a request Django refused as suspicious (too big, too many fields, bad Host)."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return 413, f"The request body is larger than {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE)."
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return 400, f"The request has more than {limit} form fields (DATA_UPLOAD_MAX_NUMBER_FIELDS)."
    if isinstance(exc, DisallowedHost):
        return 400, "The Host header names a host this server does not serve (ALLOWED_HOSTS)."
    return 400, "The request was refused as malformed or suspicious."


def exception_handler(exc, context):
    if isinstance(exc, SuspiciousOperation):
        # Raised while DRF reads the body; Django would answer with its HTML 400 page.
        status_code, message = refused_request(exc)
        exc = PayloadTooLarge(message) if status_code == 413 else exceptions.ParseError(message)
    if isinstance(exc, DeleteBlocked):
        set_rollback()
        return Response(exc.body, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, IntegrityError):
        logger.warning("Integrity error turned into 409: %s", exc)
        exc = Conflict("The request conflicts with existing data (a unique or integrity rule was violated).")
    if isinstance(exc, exceptions.NotAuthenticated) and exc.status_code == 401 and "request" in context:
        # `Authorization: Token …` is not "no credentials": say which scheme is expected (same challenge).
        named = unsupported_scheme_error(context["request"])
        if named is not None:
            named.auth_header = getattr(exc, "auth_header", None)
            exc = named
    return drf_exception_handler(exc, context)


# Paths whose clients are programs: an error there is a machine-readable body, never an HTML page. Each prefix has
# its renderer, (status, message) -> response; an app with its own error format (FHIR's OperationOutcome) registers
# one in its AppConfig.ready(), so this module never imports it.
ErrorRenderer = Callable[[int, str], HttpResponse]
_ERROR_RENDERERS: dict[str, ErrorRenderer] = {
    "/api/": lambda status_code, message: JsonResponse({"detail": message}, status=status_code),
}


def register_error_renderer(prefix: str, render: ErrorRenderer) -> None:
    """Answer errors under `prefix` (Django's 400/404/500 and the middleware's refusals) with `render`."""
    _ERROR_RENDERERS[prefix] = render


def machine_error(path: str, status_code: int, message: str) -> HttpResponse | None:
    """The error response for a program's path (see `register_error_renderer`), or None for a page for people."""
    for prefix, render in _ERROR_RENDERERS.items():
        if path.startswith(prefix):
            return render(status_code, message)
    return None


def bad_request(request, exception=None):
    """Django's 400 (a refused Host, body size or field count outside DRF): JSON for programs (413 for size)."""
    if isinstance(exception, SuspiciousOperation):
        status_code, message = refused_request(exception)
    else:
        status_code, message = 400, str(exception) if isinstance(exception, BadRequest) else "Bad request."
    return machine_error(request.path, status_code, message) or defaults.bad_request(request, exception)


def page_not_found(request, exception=None):
    """Django's 404 (an unknown URL): JSON for programs, the usual page elsewhere."""
    response = machine_error(request.path, 404, f"No endpoint at {request.path}.")
    return response or defaults.page_not_found(request, exception)


def server_error(request):
    """Django's 500: JSON for programs, the usual page elsewhere. The error itself is logged by Django."""
    response = machine_error(request.path, 500, "Internal server error; it has been logged.")
    return response or defaults.server_error(request)
