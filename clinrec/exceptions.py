"""One place that turns domain and database errors into the JSON error shapes of the API.

- validation problems: 400 with `{field: [message, ...]}` (DRF's shape);
- a delete blocked by a PROTECT link: 409 with `detail` and `blocked_by` (what still points at the object);
- a write that collides with existing data (a race past validation): 409 with `detail`.
Every error response rolls the request's transaction back, so nothing is half-written.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import JsonResponse
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


def exception_handler(exc, context):
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


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def page_not_found(request, exception=None):
    """Django's 404 (an unknown URL): JSON under /api/, the usual page elsewhere."""
    if _wants_json(request):
        return JsonResponse({"detail": f"No endpoint at {request.path}."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """Django's 500: JSON under /api/, the usual page elsewhere. The error itself is logged by Django."""
    if _wants_json(request):
        return JsonResponse({"detail": "Internal server error; it has been logged."}, status=500)
    return defaults.server_error(request)
