"""How the API treats paths: the trailing slash is optional, unknown paths and impossible ids are JSON 404s."""

from __future__ import annotations

import pytest

from patients.models import Patient
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db


def test_post_without_trailing_slash_creates_instead_of_losing_the_body(admin_client_jwt):
    response = admin_client_jwt.post("/api/v1/patients", {"id": "p-1", "name": "Ann Lee"}, format="json")
    assert response.status_code == 201, response.content
    assert Patient.objects.get(pk="p-1").name == "Ann Lee"


def test_patch_and_delete_without_trailing_slash_act_on_the_object(admin_client_jwt):
    PatientFactory(id="p-2", name="Before")
    assert admin_client_jwt.patch("/api/v1/patients/p-2", {"name": "After"}, format="json").status_code == 200
    assert Patient.objects.get(pk="p-2").name == "After"
    assert admin_client_jwt.delete("/api/v1/patients/p-2").status_code == 204
    assert not Patient.objects.filter(pk="p-2").exists()


def test_token_and_evaluate_work_without_trailing_slash(admin_client_jwt, anon_client, django_user_model):
    django_user_model.objects.create_user("slashless", password="Str0ng-pass!word")
    response = anon_client.post(
        "/api/v1/security/token", {"username": "slashless", "password": "Str0ng-pass!word"}, format="json"
    )
    assert response.status_code == 200 and "access" in response.json()
    PatientFactory(id="p-3")
    assert admin_client_jwt.post("/api/v1/patients/p-3/evaluate").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/nonexistent/", "/api/v1/patients/p-4/unknown", "/api/v2/patients/"])
def test_unknown_api_path_is_a_json_404(admin_client_jwt, path):
    response = admin_client_jwt.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "No endpoint" in response.json()["detail"]


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/patients/a%00b/"),
        ("patch", "/api/v1/patients/a%00b/"),
        ("delete", "/api/v1/procedures/a%00b/"),
        ("get", "/api/v1/recommendations/a%00b/"),
        ("post", "/api/v1/patients/a%00b/evaluate/"),
    ],
)
def test_an_id_no_database_can_hold_is_a_404_not_a_500(admin_client_jwt, method, path):
    response = getattr(admin_client_jwt, method)(path, {}, format="json")
    assert response.status_code == 404
