"""`/api/v1/recommendations/`: the catalogue of recommendation definitions (care programmes)."""

from __future__ import annotations

import pytest

from recommendations.models import PatientRecommendation, Recommendation
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendations/"
STANDARD = {
    "physical-therapy": ("physical_therapy", "Physical Therapy"),
    "weight-management": ("weight_management", "Weight Management Program"),
    "post-op-rehab": ("post_op_rehab", "Post-Op Rehabilitation Plan"),
}


def detail(pk: str) -> str:
    return f"{URL}{pk}/"


# --- The standard definitions ------------------------------------------------------------------------------


def test_standard_definitions_exist_after_migrate():
    found = {rec.id: (rec.rule, rec.name) for rec in Recommendation.objects.filter(id__in=STANDARD)}
    assert found == STANDARD


def test_standard_definitions_are_listed(viewer_client):
    response = viewer_client.get(URL)
    assert response.status_code == 200
    listed = {row["id"]: row["rule"] for row in response.json()["results"]}
    assert listed == {pk: rule for pk, (rule, _) in STANDARD.items()}


def test_filter_by_rule(viewer_client):
    response = viewer_client.get(URL, {"rule": "weight_management"})
    assert [row["id"] for row in response.json()["results"]] == ["weight-management"]


# --- Create ----------------------------------------------------------------------------------------------


def test_create_definition(admin_client_jwt):
    body = {"id": "por-123", "name": "Cardiac rehab", "description": "Twelve weeks.", "rule": None}
    response = admin_client_jwt.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json() == {**body, "manual_only": True}
    assert Recommendation.objects.get(pk="por-123").name == "Cardiac rehab"


def test_create_without_rule_or_description(admin_client_jwt):
    response = admin_client_jwt.post(URL, {"id": "por-1", "name": "Smoking cessation"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["rule"] is None
    assert response.json()["description"] == ""


def test_several_definitions_without_rule_may_coexist(admin_client_jwt):
    for pk, rule in [("por-1", None), ("por-2", None), ("por-3", "")]:
        body = {"id": pk, "name": pk, "rule": rule}
        response = admin_client_jwt.post(URL, body, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["rule"] is None


def test_numeric_id_is_stored_as_string(admin_client_jwt):
    response = admin_client_jwt.post(URL, {"id": 108, "name": "Numbered"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["id"] == "108"
    assert admin_client_jwt.get(detail("108")).json()["name"] == "Numbered"


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("por 123", id="space"),
        pytest.param("por_123", id="underscore"),
        pytest.param("por/123", id="slash"),
        pytest.param("", id="empty"),
        pytest.param("x" * 65, id="too-long"),
        pytest.param(1.5, id="float"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="null"),
    ],
)
def test_id_outside_fhir_syntax_is_400(admin_client_jwt, bad_id):
    response = admin_client_jwt.post(URL, {"id": bad_id, "name": "Bad"}, format="json")
    assert response.status_code == 400
    assert "id" in response.json()
    assert Recommendation.objects.count() == len(STANDARD)


def test_longest_fhir_id_is_accepted(admin_client_jwt):
    pk = "A.b-9" + "x" * 59
    response = admin_client_jwt.post(URL, {"id": pk, "name": "Long"}, format="json")
    assert response.status_code == 201, response.content
    assert admin_client_jwt.get(detail(pk)).status_code == 200


@pytest.mark.parametrize("duplicate", ["physical-therapy", "108"])
def test_duplicate_id_is_400_never_500(admin_client_jwt, duplicate):
    RecommendationFactory(id="108")
    response = admin_client_jwt.post(URL, {"id": int(duplicate) if duplicate.isdigit() else duplicate, "name": "Dup"})
    assert response.status_code in (400, 409)
    assert "id" in response.json() or "detail" in response.json()
    assert Recommendation.objects.get(pk=duplicate).name != "Dup"


def test_duplicate_rule_is_400_naming_rule(admin_client_jwt):
    response = admin_client_jwt.post(URL, {"id": "pt-2", "name": "Another PT", "rule": "physical_therapy"})
    assert response.status_code == 400
    assert "rule" in response.json()
    assert not Recommendation.objects.filter(pk="pt-2").exists()


def test_missing_name_is_400(admin_client_jwt):
    response = admin_client_jwt.post(URL, {"id": "por-9"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()


# --- Read, update, delete -------------------------------------------------------------------------------------


def test_retrieve_definition(viewer_client):
    response = viewer_client.get(detail("post-op-rehab"))
    assert response.status_code == 200
    assert response.json()["name"] == "Post-Op Rehabilitation Plan"


def test_unknown_definition_is_404(viewer_client):
    assert viewer_client.get(detail("no-such-programme")).status_code == 404


def test_replace_definition(admin_client_jwt):
    RecommendationFactory(id="por-1", rule=None)
    body = {"name": "Renamed", "description": "New text.", "rule": None}
    response = admin_client_jwt.put(detail("por-1"), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": "por-1", **body, "manual_only": True}
    assert admin_client_jwt.get(detail("por-1")).json()["name"] == "Renamed"


def test_replace_keeping_own_rule_is_allowed(admin_client_jwt):
    body = {"id": "weight-management", "name": "Weight programme", "rule": "weight_management"}
    response = admin_client_jwt.put(detail("weight-management"), body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["rule"] == "weight_management"


def test_patch_to_another_definitions_rule_is_400(admin_client_jwt):
    RecommendationFactory(id="por-1")
    response = admin_client_jwt.patch(detail("por-1"), {"rule": "post_op_rehab"}, format="json")
    assert response.status_code == 400
    assert "rule" in response.json()


def test_patch_definition(admin_client_jwt):
    response = admin_client_jwt.patch(detail("physical-therapy"), {"description": "Twice a week."}, format="json")
    assert response.status_code == 200, response.content
    assert Recommendation.objects.get(pk="physical-therapy").description == "Twice a week."


@pytest.mark.parametrize("method", ["put", "patch"])
def test_body_id_other_than_path_is_400(admin_client_jwt, method):
    response = getattr(admin_client_jwt, method)(
        detail("physical-therapy"), {"id": "other-id", "name": "Hijack"}, format="json"
    )
    assert response.status_code == 400
    assert "id" in response.json()
    assert not Recommendation.objects.filter(pk="other-id").exists()
    assert Recommendation.objects.get(pk="physical-therapy").name == "Physical Therapy"


def test_body_id_equal_to_path_is_accepted(admin_client_jwt):
    response = admin_client_jwt.patch(detail("physical-therapy"), {"id": "physical-therapy", "name": "PT"})
    assert response.status_code == 200, response.content


def test_writes_are_seen_by_the_next_read(admin_client_jwt):
    assert admin_client_jwt.get(detail("physical-therapy")).json()["name"] == "Physical Therapy"
    admin_client_jwt.patch(detail("physical-therapy"), {"name": "Physio"}, format="json")
    assert admin_client_jwt.get(detail("physical-therapy")).json()["name"] == "Physio"
    names = {row["id"]: row["name"] for row in admin_client_jwt.get(URL).json()["results"]}
    assert names["physical-therapy"] == "Physio"


def test_delete_unused_definition(admin_client_jwt):
    RecommendationFactory(id="por-1")
    response = admin_client_jwt.delete(detail("por-1"))
    assert response.status_code == 204
    assert not Recommendation.objects.filter(pk="por-1").exists()
    assert admin_client_jwt.get(detail("por-1")).status_code == 404


def test_delete_definition_in_use_is_409_with_blocked_by(admin_client_jwt):
    link = PatientRecommendationFactory(recommendation=Recommendation.objects.get(pk="weight-management"))
    response = admin_client_jwt.delete(detail("weight-management"))
    assert response.status_code == 409
    body = response.json()
    assert "weight-management" in body["detail"]
    assert body["blocked_by"] == {"patient recommendations": {"count": 1, "ids": [link.pk]}}
    assert Recommendation.objects.filter(pk="weight-management").exists()
    assert PatientRecommendation.objects.filter(pk=link.pk).exists()
