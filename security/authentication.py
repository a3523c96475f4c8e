"""How API clients prove who they are: a JWT access token in `Authorization: Bearer <token>`.

simplejwt ignores a header with another scheme, so a client sending `Token …` (Django REST framework's own
token scheme) or `JWT …` was told "credentials were not provided", as if it had sent nothing. The exception
handler (clinrec/exceptions.py) asks `unsupported_scheme_error` for a 401 that names the scheme the request
used and the one expected instead.

`SnapshotJWTAuthentication`: JWT authentication with a per-user snapshot, no database query per request while
nothing about users changed. simplejwt's `JWTAuthentication` loads the user on every request, and Django's
permission checks then load its user and group permissions (three queries). This class keeps, per process, the
user of each id with its permissions already loaded, stamped with the cache tokens of the auth models
(clinrec.cache: users, groups, permissions and the tables linking them). Any write to those, in any process,
replaces a token, so the next request of every user rebuilds its snapshot from the database: a user
deactivated, deleted, or whose role or its permissions changed loses access on their next request, exactly as
without the snapshot. The stamp costs no query on SQLite and one per request elsewhere (shared with the read
cache's tokens).
"""

from __future__ import annotations

import copy
import threading

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES, AUTH_HEADER_TYPES, JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from clinrec.cache import auth_models, versions_of

MAX_SNAPSHOTS = 10_000  # users remembered per process; past it the memory starts afresh


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


class SnapshotJWTAuthentication(JWTAuthentication):
    """`JWTAuthentication` whose user (with permissions) comes from a snapshot while the auth models are unchanged."""

    _snapshots: dict = {}
    _lock = threading.Lock()

    def get_user(self, validated_token):
        if api_settings.CHECK_REVOKE_TOKEN:
            return super().get_user(validated_token)  # the check depends on the token: no snapshot to share
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        stamp = versions_of(auth_models())
        found = self._snapshots.get(user_id)
        if stamp is not None and found is not None and found[0] == stamp:
            return copy.copy(found[1])  # a copy: a request may set attributes on its user
        user = super().get_user(validated_token)  # refuses an unknown or inactive user, as always
        user.get_all_permissions()  # loads and keeps the permission caches on the instance
        if stamp is not None:
            with self._lock:
                if len(self._snapshots) >= MAX_SNAPSHOTS:
                    self._snapshots.clear()
                self._snapshots[user_id] = (stamp, user)
        return copy.copy(user)


class SnapshotJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of `SnapshotJWTAuthentication`: simplejwt's own (Bearer)."""

    target_class = "security.authentication.SnapshotJWTAuthentication"
