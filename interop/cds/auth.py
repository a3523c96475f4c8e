"""CDS Hooks 2.0 authentication: the EHR signs a JWT with its own key; ClinRec trusts the issuers an admin registers.

A token is taken for an EHR's when it is signed with RS384 or ES384 or carries an `iss` claim; anything else
is left to ClinRec's own JWT and session authentication, so a clinician's bearer token works too. An EHR token
must come from a registered, active issuer, verify against that issuer's JWK Set, be meant for this service
(`aud` = the service URL), be unexpired, and carry a `jti` never seen before (kept until the token expires).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from interop.models import CdsIssuer, SeenJwtId

logger = logging.getLogger(__name__)

ALGORITHMS = ["RS384", "ES384"]
REQUIRED_CLAIMS = ["iss", "aud", "exp", "jti"]
_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_jwks_clients_lock = threading.Lock()


@dataclass
class EhrClient:
    """The caller behind a verified CDS Hooks JWT: an EHR, not a ClinRec user."""

    issuer: CdsIssuer
    claims: dict[str, Any] = field(default_factory=dict)
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False

    @property
    def username(self) -> str:
        return f"ehr:{self.issuer.issuer}"

    def has_perm(self, perm: str, obj=None) -> bool:
        return False  # an EHR holds no ClinRec role; what it may call is the issuer's allowed services


def service_url(request, service_id: str | None) -> str:
    """The URL an EHR calls for `service_id` (the discovery URL for None): what its JWT's `aud` must be."""
    base = settings.CDS_PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")
    return f"{base}/cds-services" + (f"/{service_id}" if service_id else "")


def _signing_key(issuer: CdsIssuer, token: str, header: dict[str, Any]):
    kid = header.get("kid")
    if issuer.jwks:
        try:
            key_set = jwt.PyJWKSet.from_dict(issuer.jwks)
        except jwt.PyJWTError as exc:
            logger.warning("The JWK Set registered for issuer %r is unusable: %s", issuer.issuer, exc)
            raise exceptions.AuthenticationFailed(
                f"The keys registered for issuer {issuer.issuer!r} are unusable."
            ) from None
        keys = [key for key in key_set.keys if kid is None or key.key_id == kid]
        if len(keys) != 1:
            raise exceptions.AuthenticationFailed(
                f"No single key of issuer {issuer.issuer!r} matches the JWT's kid {kid!r}."
            )
        return keys[0].key
    with _jwks_clients_lock:
        client = _jwks_clients.get(issuer.jwks_url)
        if client is None:
            client = jwt.PyJWKClient(
                issuer.jwks_url, lifespan=settings.CDS_JWKS_CACHE_SECONDS, timeout=settings.CDS_JWKS_TIMEOUT_SECONDS
            )
            _jwks_clients[issuer.jwks_url] = client
    try:
        return client.get_signing_key_from_jwt(token).key
    except jwt.PyJWKClientError as exc:
        raise exceptions.AuthenticationFailed(
            f"Could not get the signing key of issuer {issuer.issuer!r}: {exc}"
        ) from None


def remember_jti(*, issuer: str, jti: str, expires_at: datetime) -> None:
    """Record a token id as used; a second use (a replay) is refused. Expired ids are forgotten."""
    SeenJwtId.objects.filter(expires_at__lt=timezone.now()).delete()
    try:
        with transaction.atomic():
            SeenJwtId.objects.create(issuer=issuer, jti=jti, expires_at=expires_at)
    except IntegrityError:
        raise exceptions.AuthenticationFailed(
            f"JWT jti {jti!r} was already used: a token is good for one call."
        ) from None


class CdsHooksJWTAuthentication(BaseAuthentication):
    """Authenticates an EHR by the JWT it signed (CDS Hooks 2.0 "Trusting CDS Clients")."""

    keyword = b"bearer"

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="cds-services"'

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword:
            return None
        token = parts[1].decode("latin-1")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None  # not a JWT at all: ClinRec's own authentication gives the error
        if header.get("alg") not in ALGORITHMS and "iss" not in unverified:
            return None  # one of ClinRec's own tokens
        return self._verify(request, token, header, unverified)

    def _verify(self, request, token: str, header: dict[str, Any], unverified: dict[str, Any]):
        iss = unverified.get("iss")
        if not iss:
            raise exceptions.AuthenticationFailed("The JWT has no iss claim naming the EHR that signed it.")
        issuer = CdsIssuer.objects.filter(issuer=iss, active=True).first()
        if issuer is None:
            raise exceptions.AuthenticationFailed(f"JWT issuer {iss!r} is not registered with ClinRec.")
        if header.get("alg") not in ALGORITHMS:
            raise exceptions.AuthenticationFailed(f"JWT alg must be RS384 or ES384, got {header.get('alg')!r}.")
        service_id = (getattr(request, "parser_context", None) or {}).get("kwargs", {}).get("service_id")
        audience = service_url(request, service_id)
        # Feedback goes to `<service>/feedback`; a token made for either URL is meant for this service.
        audiences = [audience, f"{audience}/feedback"] if service_id else [audience]
        try:
            claims = jwt.decode(
                token,
                _signing_key(issuer, token, header),
                algorithms=ALGORITHMS,
                audience=audiences,
                options={"require": REQUIRED_CLAIMS},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise exceptions.AuthenticationFailed("The JWT has expired (exp is in the past).") from None
        except jwt.InvalidAudienceError:
            raise exceptions.AuthenticationFailed(f"JWT aud must be this service's URL, {audience}.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise exceptions.AuthenticationFailed(f"The JWT lacks the {exc.claim} claim.") from None
        except jwt.InvalidSignatureError:
            raise exceptions.AuthenticationFailed(f"The JWT signature does not verify with {iss!r}'s keys.") from None
        except jwt.PyJWTError as exc:
            raise exceptions.AuthenticationFailed(f"Invalid JWT: {exc}.") from None
        remember_jti(issuer=iss, jti=str(claims["jti"]), expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC))
        return EhrClient(issuer=issuer, claims=claims), claims
