"""Fixtures of the interop tests: the seeded hospital, and an EHR with its own signing keys."""

from __future__ import annotations

import json
import time
import uuid
from io import StringIO

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import call_command

from interop.models import CdsIssuer


@pytest.fixture
def seeded(db):
    call_command("seed_db", stdout=StringIO())


class Ehr:
    """An EHR that signs CDS Hooks JWTs with its own private key (RS384 or ES384)."""

    def __init__(self, issuer: str, algorithm: str = "RS384"):
        self.issuer = issuer
        self.algorithm = algorithm
        if algorithm == "RS384":
            self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        else:
            self.private_key = ec.generate_private_key(ec.SECP384R1())
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private_key.public_key()))
        self.kid = f"{issuer}-key"
        self.jwks = {"keys": [{**jwk, "kid": self.kid, "alg": algorithm, "use": "sig"}]}

    def token(self, aud: str, *, expires_in: int = 300, jti: str | None = None, **claims) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "sub": "ehr-client",
            "aud": aud,
            "iat": now,
            "exp": now + expires_in,
            "jti": jti or str(uuid.uuid4()),
            **claims,
        }
        return jwt.encode(payload, self.private_key, algorithm=self.algorithm, headers={"kid": self.kid})

    def headers(self, aud: str, **kwargs) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token(aud, **kwargs)}"}


@pytest.fixture
def ehr(db) -> Ehr:
    """An EHR registered with its inline JWK Set, allowed to call every service."""
    ehr = Ehr("https://ehr.example.org")
    CdsIssuer.objects.create(issuer=ehr.issuer, jwks=ehr.jwks)
    return ehr
