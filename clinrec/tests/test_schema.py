"""The OpenAPI schema integrators read: valid, warning-free, and every operation says what it does and how it fails."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS

METHODS = ("get", "post", "put", "patch", "delete")
# Operations that need no token: getting a token, refreshing it, logging out (the refresh token is the
# credential), and the load balancer's health check.
PUBLIC = {
    "POST /api/v1/security/token/",
    "POST /api/v1/security/refresh/",
    "POST /api/v1/security/logout/",
    "GET /api/v1/health/",
}


def generate_schema(path: Path) -> tuple[dict, str]:
    """Run `manage.py spectacular --validate --fail-on-warn`; warnings of earlier generations are not counted."""
    GENERATOR_STATS.reset()
    err = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path), stderr=err)
    return yaml.safe_load(path.read_text()), err.getvalue()


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    return generate_schema(tmp_path_factory.mktemp("schema") / "schema.yml")[0]


@pytest.fixture(scope="module")
def operations(schema) -> dict[str, dict]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def is_protected(operation: dict) -> bool:
    return any("jwtAuth" in requirement for requirement in operation.get("security", []))


def test_schema_validates_without_warnings(tmp_path):
    schema, err = generate_schema(tmp_path / "schema.yml")
    assert schema["openapi"].startswith("3."), err
    assert schema["info"]["title"] == "ClinRec API"
    assert not GENERATOR_STATS, err


def test_schema_covers_every_resource(operations):
    expected = {
        "GET /api/v1/patients/",
        "POST /api/v1/patients/",
        "DELETE /api/v1/patients/{id}/",
        "POST /api/v1/patients/{id}/evaluate/",
        "PUT /api/v1/procedures/{id}/",
        "GET /api/v1/patient-procedures/",
        "PATCH /api/v1/recommendations/{id}/",
        "GET /api/v1/patient-recommendations/",
        "GET /api/v1/events/",
        "GET /api/v1/analytics/recommendations/",
        "POST /api/v1/security/register/",
        *PUBLIC,
    }
    assert expected <= set(operations)


def test_every_operation_has_a_summary(operations):
    missing = sorted(name for name, operation in operations.items() if not operation.get("summary"))
    assert not missing, f"operations without a summary: {missing}"


def test_every_operation_documents_a_client_error(operations):
    # The health check takes no input and no token: its failure is the documented 503, never a 4xx.
    missing = sorted(
        name
        for name, operation in operations.items()
        if name != "GET /api/v1/health/" and not any(code.startswith("4") for code in operation["responses"])
    )
    assert not missing, f"operations documenting no 4xx response: {missing}"


def test_protected_operations_document_401_and_403(operations):
    missing = sorted(
        name
        for name, operation in operations.items()
        if is_protected(operation) and not {"401", "403"} <= set(operation["responses"])
    )
    assert not missing, f"protected operations missing 401/403: {missing}"


def test_every_operation_but_the_public_ones_requires_a_bearer_token(schema, operations):
    assert schema["components"]["securitySchemes"]["jwtAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    unprotected = sorted(name for name, operation in operations.items() if not is_protected(operation))
    assert set(unprotected) == PUBLIC


def test_token_endpoints_document_bad_credentials(operations):
    for name in ("POST /api/v1/security/token/", "POST /api/v1/security/refresh/"):
        assert {"200", "400", "401"} <= set(operations[name]["responses"]), name


def test_blocked_delete_documents_409_with_blocked_by(schema, operations):
    for resource in ("patients", "procedures", "recommendations"):
        responses = operations[f"DELETE /api/v1/{resource}/{{id}}/"]["responses"]
        assert "409" in responses, resource
        ref = responses["409"]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert "blocked_by" in component["properties"]


def test_lists_document_limit_offset_and_skip(operations):
    for resource in ("patients", "patient-procedures", "patient-recommendations"):
        names = {parameter["name"] for parameter in operations[f"GET /api/v1/{resource}/"].get("parameters", [])}
        assert {"limit", "offset", "skip"} <= names, resource


def test_link_resources_document_expand_and_filters(operations):
    names = {p["name"] for p in operations["GET /api/v1/patient-recommendations/"]["parameters"]}
    assert {"expand", "patient", "recommendation", "status"} <= names
    names = {p["name"] for p in operations["GET /api/v1/patient-procedures/"]["parameters"]}
    assert {"expand", "patient", "procedure"} <= names


def test_every_operation_documents_its_success_response(operations):
    missing = sorted(
        name
        for name, operation in operations.items()
        if not any(code.startswith("2") for code in operation["responses"])
    )
    assert not missing, f"operations documenting no 2xx response: {missing}"


def component(schema: dict, response: dict) -> dict:
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


@pytest.mark.parametrize(
    "resource, component_name",
    [
        ("patients", "Patient"),
        ("procedures", "Procedure"),
        ("patient-procedures", "PatientProcedure"),
        ("recommendations", "Recommendation"),
        ("patient-recommendations", "PatientRecommendation"),
    ],
)
def test_resources_document_their_bodies(schema, operations, resource, component_name):
    listed = component(schema, operations[f"GET /api/v1/{resource}/"]["responses"]["200"])
    assert {"count", "next", "previous", "results"} <= set(listed["properties"])
    assert listed["properties"]["results"]["items"]["$ref"].endswith(f"/{component_name}")
    assert "201" in operations[f"POST /api/v1/{resource}/"]["responses"]
    for method in ("GET", "PUT", "PATCH"):
        body = component(schema, operations[f"{method} /api/v1/{resource}/{{id}}/"]["responses"]["200"])
        assert "id" in body["properties"], (method, resource)


def test_token_endpoints_document_the_tokens_they_return(schema, operations):
    token = operations["POST /api/v1/security/token/"]
    assert set(component(schema, token["responses"]["200"])["properties"]) == {"access", "refresh"}
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(token["requestBody"]["content"])
    refresh = operations["POST /api/v1/security/refresh/"]
    # Rotation: a refresh returns a new refresh token with the access token.
    assert set(component(schema, refresh["responses"]["200"])["properties"]) == {"access", "refresh"}
    logout = operations["POST /api/v1/security/logout/"]
    assert "204" in logout["responses"] and "401" in logout["responses"]
    request_body = logout["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][request_body]["properties"]) == {"refresh"}
