"""The access token the API accepts: simplejwt's, with its signature check remembered per process.

Checking a JWT's signature (PyJWT: base64, JSON, HMAC and its claim checks) is the most expensive step of a cached
read. A token's bytes and the signing key do not change while a process runs, so once a token has passed the
full check, its payload is kept (per process, bounded) and the same bytes are not checked again. Everything
that can change with time is still checked on every request by simplejwt's `Token.verify()`: expiry (with
the configured leeway), the token type and the presence of its id. A token that fails is never remembered.
"""

from __future__ import annotations

import threading
from typing import Any

from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import AccessToken as SimpleJWTAccessToken

MAX_REMEMBERED = 10_000  # tokens per process; past it the memory starts afresh


class RememberingTokenBackend:
    """A simplejwt `TokenBackend` whose `decode` remembers the payload of each token whose signature it verified."""

    def __init__(self, backend: TokenBackend) -> None:
        self._backend = backend
        self._verified: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)  # encode, leeway, keys: the library's own

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        if not verify:
            return self._backend.decode(token, verify=False)
        payload = self._verified.get(token)
        if payload is None:
            payload = self._backend.decode(token, verify=True)  # raises for a bad signature or an expired token
            with self._lock:
                if len(self._verified) >= MAX_REMEMBERED:
                    self._verified.clear()
                self._verified[token] = payload
        return dict(payload)  # a copy: a Token may change its payload


class AccessToken(SimpleJWTAccessToken):
    """simplejwt's access token, verified through `RememberingTokenBackend` (SIMPLE_JWT["AUTH_TOKEN_CLASSES"])."""

    _remembering: RememberingTokenBackend | None = None

    @property
    def token_backend(self) -> RememberingTokenBackend:
        backend = super().token_backend
        cls = type(self)
        if cls._remembering is None or cls._remembering._backend is not backend:
            cls._remembering = RememberingTokenBackend(backend)
        return cls._remembering
