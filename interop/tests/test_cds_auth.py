"""CDS Hooks 2.0 authentication: JWTs signed by registered EHRs (RS384/ES384), replay refused; CORS for EHR origins."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from django.contrib.admin.sites import site
from django.core.exceptions import ValidationError

from interop.models import CdsIssuer, IssuedCard, SeenJwtId
from interop.tests.conftest import Ehr
from interop.tests.test_cds_hooks import hook_request
from recommendations.models import PatientRecommendation

SERVICE_URL = "http://testserver/cds-services/patient-view"


def post(client, headers: dict, *, service: str = "patient-view"):
    return client.post(f"/cds-services/{service}", hook_request("108"), format="json", **headers)


def test_a_registered_ehrs_signed_jwt_is_accepted(seeded, anon_client, ehr):
    response = post(anon_client, ehr.headers(SERVICE_URL))
    assert response.status_code == 200, response.content
    assert len(response.json()["cards"]) == 2


def test_es384_is_accepted_too(seeded, anon_client):
    ehr = Ehr("https://ec-ehr.example.org", algorithm="ES384")
    CdsIssuer.objects.create(issuer=ehr.issuer, jwks=ehr.jwks)
    assert post(anon_client, ehr.headers(SERVICE_URL)).status_code == 200


def test_discovery_takes_the_discovery_url_as_audience(seeded, anon_client, ehr):
    response = anon_client.get("/cds-services", **ehr.headers("http://testserver/cds-services"))
    assert response.status_code == 200
    assert len(response.json()["services"]) == 2


def test_the_public_base_url_setting_sets_the_audience(seeded, anon_client, ehr, settings):
    settings.CDS_PUBLIC_BASE_URL = "https://clinrec.hospital.org"
    assert post(anon_client, ehr.headers(SERVICE_URL)).status_code == 401
    assert post(anon_client, ehr.headers("https://clinrec.hospital.org/cds-services/patient-view")).status_code == 200


@pytest.mark.parametrize(
    ("make_headers", "words"),
    [
        (
            lambda ehr: Ehr("https://rogue.example.org").headers(SERVICE_URL),
            "'https://rogue.example.org' is not registered",
        ),
        (lambda ehr: ehr.headers(SERVICE_URL, expires_in=-120), "has expired"),
        (lambda ehr: ehr.headers("http://testserver/cds-services/discharge-rehab"), "aud must be this service's URL"),
        (
            lambda ehr: {
                "HTTP_AUTHORIZATION": "Bearer " + jwt.encode({"iss": ehr.issuer, "aud": SERVICE_URL}, "s" * 32, "HS256")
            },
            "alg must be RS384 or ES384",
        ),
        (lambda ehr: {"HTTP_AUTHORIZATION": f"Bearer {_signed_by_another_key(ehr)}"}, "signature does not verify"),
        (lambda ehr: {"HTTP_AUTHORIZATION": f"Bearer {_without_jti(ehr)}"}, "lacks the jti claim"),
    ],
)
def test_bad_ehr_tokens_are_401_naming_the_problem_and_store_nothing(seeded, anon_client, ehr, make_headers, words):
    response = post(anon_client, make_headers(ehr))
    assert response.status_code == 401, response.content
    assert words in response.json()["detail"]
    assert IssuedCard.objects.count() == 0


def _signed_by_another_key(ehr: Ehr) -> str:
    impostor = Ehr(ehr.issuer)
    impostor.kid = ehr.kid
    return impostor.token(SERVICE_URL)


def _without_jti(ehr: Ehr) -> str:
    payload = {"iss": ehr.issuer, "aud": SERVICE_URL, "exp": 9999999999}
    return jwt.encode(payload, ehr.private_key, algorithm="RS384", headers={"kid": ehr.kid})


def test_a_replayed_jti_is_refused(seeded, anon_client, ehr):
    headers = ehr.headers(SERVICE_URL, jti="once-only")
    assert post(anon_client, headers).status_code == 200
    replay = post(anon_client, headers)
    assert replay.status_code == 401
    assert "jti 'once-only' was already used" in replay.json()["detail"]
    assert IssuedCard.objects.count() == 2  # the first call's cards only
    assert SeenJwtId.objects.filter(jti="once-only").count() == 1


def test_an_inactive_issuer_is_refused(seeded, anon_client, ehr):
    CdsIssuer.objects.filter(issuer=ehr.issuer).update(active=False)
    assert post(anon_client, ehr.headers(SERVICE_URL)).status_code == 401


def test_an_issuer_calls_only_its_allowed_services(seeded, anon_client, ehr):
    CdsIssuer.objects.filter(issuer=ehr.issuer).update(allowed_services=["discharge-rehab"])
    response = post(anon_client, ehr.headers(SERVICE_URL))
    assert response.status_code == 403
    assert "not allowed to call the patient-view service" in response.json()["detail"]


def test_clinrecs_own_bearer_tokens_are_accepted(seeded, viewer_client):
    assert post(viewer_client, {}).status_code == 200


class JwksHandler(BaseHTTPRequestHandler):
    jwks: dict = {}

    def do_GET(self):
        body = json.dumps(self.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def jwks_server():
    """A JWKS endpoint of the test's own on the loopback interface."""
    server = HTTPServer(("127.0.0.1", 0), JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()
    server.server_close()


def test_an_issuer_registered_by_jwks_url_is_verified_with_the_keys_it_publishes(seeded, anon_client, jwks_server):
    ehr = Ehr("https://url-ehr.example.org", algorithm="ES384")
    JwksHandler.jwks = ehr.jwks
    CdsIssuer.objects.create(issuer=ehr.issuer, jwks_url=jwks_server)
    assert post(anon_client, ehr.headers(SERVICE_URL)).status_code == 200


def test_an_issuer_needs_keys_and_a_well_formed_jwks():
    with pytest.raises(ValidationError, match="JWKS URL or its JWK Set"):
        CdsIssuer(issuer="https://a.example.org").clean()
    with pytest.raises(ValidationError, match="keys"):
        CdsIssuer(issuer="https://a.example.org", jwks={"kty": "RSA"}).clean()


def test_the_admin_registers_issuers(seeded, admin_client):
    assert CdsIssuer in site._registry
    response = admin_client.post(
        "/admin/interop/cdsissuer/add/",
        {
            "issuer": "https://new-ehr.example.org",
            "jwks_url": "https://new-ehr.example.org/jwks",
            "jwks": "null",
            "allowed_services": '["patient-view"]',
            "active": "on",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert CdsIssuer.objects.get().allowed_services == ["patient-view"]


@pytest.mark.parametrize(
    ("origin", "allowed"), [("https://ehr.hospital.org", True), ("https://evil.example.com", False)]
)
def test_cors_allows_configured_ehr_origins_only(seeded, viewer_client, settings, origin, allowed):
    settings.CORS_ALLOWED_ORIGINS = ["https://ehr.hospital.org"]
    response = viewer_client.options(
        "/cds-services/patient-view", HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert (response.get("Access-Control-Allow-Origin") == origin) is allowed
    assert "access-control-allow-origin" not in viewer_client.get("/api/v1/patients/", HTTP_ORIGIN=origin).headers


def test_feedback_accepts_a_token_made_for_the_service_or_its_feedback_url(seeded, anon_client, ehr):
    [card] = anon_client.post(
        "/cds-services/patient-view", hook_request("105"), format="json", **ehr.headers(SERVICE_URL)
    ).json()["cards"]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T10:00:00Z"}
    for aud in (SERVICE_URL, f"{SERVICE_URL}/feedback"):
        response = anon_client.post(
            "/cds-services/patient-view/feedback", {"feedback": [item]}, format="json", **ehr.headers(aud)
        )
        assert response.status_code == 200, response.content


def test_an_issuer_with_an_unusable_jwks_is_refused_not_a_crash(seeded, anon_client, ehr):
    CdsIssuer.objects.filter(issuer=ehr.issuer).update(jwks={"keys": [{"kty": "nonsense"}]})
    response = post(anon_client, ehr.headers(SERVICE_URL))
    assert response.status_code == 401
    assert "unusable" in response.json()["detail"]


def test_a_card_accepted_by_an_ehr_records_the_issuer_as_who_accepted_it(seeded, anon_client, ehr):
    response = anon_client.post(
        "/cds-services/patient-view", hook_request("105"), format="json", **ehr.headers(SERVICE_URL)
    )
    [card] = response.json()["cards"]
    feedback = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-11-27T10:00:00Z"}
    answer = anon_client.post(
        "/cds-services/patient-view/feedback",
        {"feedback": [feedback]},
        format="json",
        **ehr.headers(f"{SERVICE_URL}/feedback"),
    )
    assert answer.status_code == 200, answer.content
    link = PatientRecommendation.objects.get(patient_id="105")
    assert link.source == "cds"
    assert link.provenance["recorded_by"] == f"ehr:{ehr.issuer}"
