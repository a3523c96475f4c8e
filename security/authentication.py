"""How API clients prove who they are: a JWT access token in `Authorization: Bearer <token>`.

simplejwt ignores a header with another scheme, so a client sending `Token …` (Django REST framework's own
token scheme) or `JWT …` was told "credentials were not provided", as if it had sent nothing. The exception
handler (clinrec/exceptions.py) asks `unsupported_scheme_error` for a 401 that names the scheme the request
used and the one expected instead.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES, AUTH_HEADER_TYPES


def unsupported_scheme_error(request) -> exceptions.AuthenticationFailed | None:
    """The 401 for a request refused as anonymous although its `Authorization` header names another scheme."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    parts = header.encode("latin-1", "replace").split()
    if not parts or parts[0] in AUTH_HEADER_TYPE_BYTES:
        return None
    scheme = parts[0].decode("latin-1")[:32]
    return exceptions.AuthenticationFailed(
        f"Authorization scheme '{scheme}' is not accepted: send 'Authorization: {AUTH_HEADER_TYPES[0]} "
        "<access token>' (get one with POST /api/v1/security/token/).",
        code="unsupported_authorization_scheme",
    )
