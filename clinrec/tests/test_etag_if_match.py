"""Optimistic concurrency as an integrator sees it: `ETag` on reads and writes, `If-Match` (412, 428), 304.

Every resource served by ResourceViewSet behaves alike; the patient is the example where one is enough, and
the stale-version tests run on every resource.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from drf_spectacular.generators import SchemaGenerator

from clinrec.cache import clear_read_cache
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure, Procedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation, Recommendation
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

pytestmark = pytest.mark.django_db

PATIENT = "/api/v1/patients/108/"
STRONG_ETAG = re.compile(r'^"[0-9a-f]{32}"$')


@pytest.fixture
def patient():
    return PatientFactory(id="108", name="Ada Byron", height_cm=170.0, weight_kg=70.0, bmi=24.2)


def etag_of(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response["ETag"]


def updated_columns(queries: CaptureQueriesContext, table: str) -> list[set[str]]:
    """The columns each UPDATE of `table` wrote, from the SQL that ran."""
    return [
        set(re.findall(r'"(\w+)" = ', re.search(r" SET (.*) WHERE ", query["sql"]).group(1)))
        for query in queries.captured_queries
        if query["sql"].startswith(f'UPDATE "{table}"')
    ]


# Each resource: its detail URL for a fresh row, a change to PATCH, and how to read the changed field back.
RESOURCES = {
    "patient": (
        lambda: f"/api/v1/patients/{PatientFactory().pk}/",
        {"name": "Changed"},
        lambda pk: Patient.objects.get(pk=pk).name,
    ),
    "procedure": (
        lambda: f"/api/v1/procedures/{ProcedureFactory().pk}/",
        {"name": "Changed"},
        lambda pk: Procedure.objects.get(pk=pk).name,
    ),
    "patient procedure": (
        lambda: f"/api/v1/patient-procedures/{PatientProcedureFactory().pk}/",
        {"report": "Changed"},
        lambda pk: PatientProcedure.objects.get(pk=pk).report,
    ),
    "recommendation definition": (
        lambda: f"/api/v1/recommendations/{RecommendationFactory().pk}/",
        {"name": "Changed"},
        lambda pk: Recommendation.objects.get(pk=pk).name,
    ),
    "patient recommendation": (
        lambda: f"/api/v1/patient-recommendations/{PatientRecommendationFactory().pk}/",
        {"reason": "Changed"},
        lambda pk: PatientRecommendation.objects.get(pk=pk).reason,
    ),
}


def pk_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


# --- ETag on reads and writes -------------------------------------------------------------------------------


def test_get_answers_a_strong_etag_that_stays_until_the_resource_changes(viewer_client, clinician_client, patient):
    first = etag_of(viewer_client, PATIENT)

    assert STRONG_ETAG.match(first)
    assert etag_of(viewer_client, PATIENT) == first
    assert clinician_client.patch(PATIENT, {"name": "Ada Lovelace"}, format="json").status_code == 200
    assert etag_of(viewer_client, PATIENT) != first


def test_etag_is_the_same_whether_the_cache_or_the_database_served_the_read(viewer_client, patient):
    clear_read_cache()
    from_database = viewer_client.get(PATIENT)
    with CaptureQueriesContext(connection) as queries:
        from_cache = viewer_client.get(PATIENT)
    clear_read_cache()
    from_database_again = viewer_client.get(PATIENT)

    patient_reads = [query for query in queries.captured_queries if 'FROM "patients_patient"' in query["sql"]]
    assert not patient_reads, "the second read did not come from the cache"
    assert from_cache.json() == from_database.json()
    assert from_cache["ETag"] == from_database["ETag"] == from_database_again["ETag"]


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_update_answers_the_etag_a_following_read_shows(clinician_client, viewer_client, patient, method):
    old = etag_of(viewer_client, PATIENT)
    body = {"name": "Ada Lovelace", "birth_date": "1960-03-01", "height_cm": 171, "weight_kg": 71}

    response = getattr(clinician_client, method)(PATIENT, body, format="json")

    assert response.status_code == 200, response.content
    assert response["ETag"] not in ("", old)
    assert etag_of(viewer_client, PATIENT) == response["ETag"]


@pytest.mark.parametrize(
    ("collection", "body"),
    [
        ("patients", {"id": "109", "name": "Grace", "birth_date": "1950-01-02", "height_cm": 160.5, "weight_kg": 55}),
        ("procedures", {"id": "hip-9", "name": "Hip", "department": "orthopaedics", "is_surgery": True}),
        (
            "patient-procedures",
            {"patient": "108", "procedure": "knee-1", "performed_at": "2025-03-01T09:30:00.123456+02:00"},
        ),
        ("recommendations", {"id": "por-9", "name": "Smoking cessation"}),
        ("patient-recommendations", {"patient": "108", "recommendation": "por-1", "reason": "Asked for it."}),
    ],
)
def test_a_create_answers_the_etag_a_following_read_shows(admin_client_jwt, patient, collection, body):
    ProcedureFactory(id="knee-1")
    RecommendationFactory(id="por-1")

    response = admin_client_jwt.post(f"/api/v1/{collection}/", body, format="json")

    assert response.status_code == 201, response.content
    assert STRONG_ETAG.match(response["ETag"])
    clear_read_cache()  # read it back from the database
    assert etag_of(admin_client_jwt, f"/api/v1/{collection}/{response.json()['id']}/") == response["ETag"]


def test_lists_and_deletes_carry_no_etag(viewer_client, admin_client_jwt, patient):
    assert "ETag" not in viewer_client.get("/api/v1/patients/")
    assert "ETag" not in admin_client_jwt.delete(PATIENT)


def test_expanded_read_has_its_own_etag_and_it_guards_an_expanded_write(clinician_client):
    link = PatientRecommendationFactory()
    url = f"/api/v1/patient-recommendations/{link.pk}/"
    expanded = etag_of(clinician_client, f"{url}?expand=patient")
    assert expanded != etag_of(clinician_client, url)

    response = clinician_client.patch(
        f"{url}?expand=patient", {"reason": "Changed"}, format="json", HTTP_IF_MATCH=expanded
    )

    assert response.status_code == 200, response.content
    assert response.json()["patient"]["id"] == link.patient_id


# --- If-None-Match ------------------------------------------------------------------------------------------


def test_if_none_match_with_the_current_etag_is_304_without_a_body(viewer_client, patient):
    etag = etag_of(viewer_client, PATIENT)

    response = viewer_client.get(PATIENT, HTTP_IF_NONE_MATCH=f'"other", {etag}')

    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == etag


def test_if_none_match_with_an_old_etag_answers_the_current_representation(viewer_client, clinician_client, patient):
    old = etag_of(viewer_client, PATIENT)
    clinician_client.patch(PATIENT, {"name": "Ada Lovelace"}, format="json")

    response = viewer_client.get(PATIENT, HTTP_IF_NONE_MATCH=old)

    assert response.status_code == 200
    assert response.json()["name"] == "Ada Lovelace"
    assert response["ETag"] != old


def test_if_none_match_still_needs_a_token(anon_client, viewer_client, patient):
    etag = etag_of(viewer_client, PATIENT)

    assert anon_client.get(PATIENT, HTTP_IF_NONE_MATCH=etag).status_code == 401


# --- If-Match -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_patch_with_a_stale_if_match_is_412_and_writes_nothing(admin_client_jwt, resource):
    make_url, change, stored = RESOURCES[resource]
    url = make_url()
    before = stored(pk_of(url))
    stale = etag_of(admin_client_jwt, url)
    # Someone else writes first (any field: the version is the whole representation).
    assert admin_client_jwt.patch(url, change, format="json").status_code == 200
    changed = stored(pk_of(url))

    response = admin_client_jwt.patch(
        url, {**change, **dict.fromkeys(change, "Mine")}, format="json", HTTP_IF_MATCH=stale
    )

    assert response.status_code == 412, response.content
    assert "changed" in response.json()["detail"]
    assert "read it again" in response.json()["detail"].lower()
    assert stored(pk_of(url)) == changed != before


@pytest.mark.parametrize("resource", RESOURCES)
def test_patch_with_the_current_if_match_is_applied_and_answers_the_new_etag(admin_client_jwt, resource):
    make_url, change, stored = RESOURCES[resource]
    url = make_url()
    current = etag_of(admin_client_jwt, url)

    response = admin_client_jwt.patch(url, change, format="json", HTTP_IF_MATCH=current)

    assert response.status_code == 200, response.content
    assert stored(pk_of(url)) == next(iter(change.values()))
    assert response["ETag"] != current
    assert etag_of(admin_client_jwt, url) == response["ETag"]


def test_put_with_a_stale_if_match_is_412_and_writes_nothing(clinician_client, patient):
    stale = etag_of(clinician_client, PATIENT)
    clinician_client.patch(PATIENT, {"weight_kg": 72}, format="json")

    response = clinician_client.put(PATIENT, {"name": "Replaced", "weight_kg": 50}, format="json", HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    stored = Patient.objects.get(pk="108")
    assert (stored.name, stored.weight_kg) == ("Ada Byron", 72.0)


def test_if_match_may_list_several_etags(clinician_client, patient):
    current = etag_of(clinician_client, PATIENT)

    response = clinician_client.patch(PATIENT, {"name": "New"}, format="json", HTTP_IF_MATCH=f'"old", {current}')

    assert response.status_code == 200


def test_a_weak_etag_never_satisfies_if_match(clinician_client, patient):
    current = etag_of(clinician_client, PATIENT)

    response = clinician_client.patch(PATIENT, {"name": "New"}, format="json", HTTP_IF_MATCH=f"W/{current}")

    assert response.status_code == 412
    assert Patient.objects.get(pk="108").name == "Ada Byron"


def test_if_match_star_writes_whatever_the_current_version(clinician_client, patient):
    clinician_client.patch(PATIENT, {"weight_kg": 72}, format="json")

    response = clinician_client.patch(PATIENT, {"name": "New"}, format="json", HTTP_IF_MATCH="*")

    assert response.status_code == 200
    assert Patient.objects.get(pk="108").name == "New"


def test_if_match_star_on_a_missing_resource_is_404(admin_client_jwt):
    response = admin_client_jwt.patch("/api/v1/patients/ghost/", {"name": "New"}, format="json", HTTP_IF_MATCH="*")

    assert response.status_code == 404
    assert not Patient.objects.exists()


def test_delete_with_a_stale_if_match_is_412_and_keeps_the_row(admin_client_jwt, patient):
    stale = etag_of(admin_client_jwt, PATIENT)
    admin_client_jwt.patch(PATIENT, {"name": "Renamed"}, format="json")

    response = admin_client_jwt.delete(PATIENT, HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert Patient.objects.filter(pk="108", name="Renamed").exists()


def test_delete_with_the_current_if_match_deletes(admin_client_jwt, patient):
    response = admin_client_jwt.delete(PATIENT, HTTP_IF_MATCH=etag_of(admin_client_jwt, PATIENT))

    assert response.status_code == 204
    assert not Patient.objects.filter(pk="108").exists()


def test_if_match_is_checked_after_permissions(viewer_client, patient):
    response = viewer_client.patch(PATIENT, {"name": "New"}, format="json", HTTP_IF_MATCH='"stale"')

    assert response.status_code == 403


# --- REQUIRE_IF_MATCH ---------------------------------------------------------------------------------------


@override_settings(REQUIRE_IF_MATCH=True)
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_write_without_if_match_is_428_when_the_server_requires_it(admin_client_jwt, patient, method):
    response = getattr(admin_client_jwt, method)(PATIENT, {"name": "New"}, format="json")

    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert Patient.objects.filter(pk="108", name="Ada Byron").exists()


@override_settings(REQUIRE_IF_MATCH=True)
def test_a_write_with_if_match_passes_when_the_server_requires_it(clinician_client, patient):
    response = clinician_client.patch(
        PATIENT, {"name": "New"}, format="json", HTTP_IF_MATCH=etag_of(clinician_client, PATIENT)
    )

    assert response.status_code == 200
    assert Patient.objects.get(pk="108").name == "New"


@override_settings(REQUIRE_IF_MATCH=True)
def test_reads_and_creates_need_no_if_match_when_the_server_requires_it(clinician_client, patient):
    assert clinician_client.get(PATIENT).status_code == 200
    assert clinician_client.post("/api/v1/patients/", {"id": "109", "name": "Grace"}, format="json").status_code == 201


@override_settings(REQUIRE_IF_MATCH=False)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_a_write_without_if_match_is_allowed_by_default(clinician_client, patient, method):
    response = getattr(clinician_client, method)(PATIENT, {"name": "New"}, format="json")

    assert response.status_code == 200
    assert Patient.objects.get(pk="108").name == "New"


# --- only the changed columns are written ------------------------------------------------------------------


def test_patch_writes_only_the_sent_field_of_a_link(clinician_client):
    link = PatientRecommendationFactory(status="active")

    with CaptureQueriesContext(connection) as queries:
        response = clinician_client.patch(
            f"/api/v1/patient-recommendations/{link.pk}/", {"status": "completed"}, format="json"
        )

    assert response.status_code == 200, response.content
    assert updated_columns(queries, "recommendations_patientrecommendation") == [{"status"}]


def test_patch_that_changes_nothing_writes_nothing(clinician_client, patient):
    with CaptureQueriesContext(connection) as queries:
        response = clinician_client.patch(PATIENT, {"name": "Ada Byron", "height_cm": 170}, format="json")

    assert response.status_code == 200
    assert updated_columns(queries, "patients_patient") == []


def test_if_match_costs_no_extra_query(clinician_client, patient, django_assert_num_queries):
    clinician_client.get(PATIENT)  # the same footing for both: the clinician's role snapshot taken
    with CaptureQueriesContext(connection) as unconditional:
        assert clinician_client.patch(PATIENT, {"name": "First"}, format="json").status_code == 200
    without_if_match = len(unconditional.captured_queries)  # counted now: the next request clears the log
    etag = etag_of(clinician_client, PATIENT)

    with django_assert_num_queries(without_if_match):
        response = clinician_client.patch(PATIENT, {"name": "Second"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200


# --- the OpenAPI schema tells integrators ------------------------------------------------------------------


def test_schema_documents_etag_if_match_and_their_errors_on_every_resource():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    details = [path for path in schema["paths"] if path.endswith("/{id}/") and "put" in schema["paths"][path]]
    assert len(details) == len(RESOURCES)

    for path in details:
        item = schema["paths"][path]
        for method in ("put", "patch", "delete"):
            headers = {p["name"] for p in item[method]["parameters"] if p["in"] == "header"}
            assert headers == {"If-Match"}, (path, method)
            assert {"412", "428"} <= set(item[method]["responses"]), (path, method)
        assert {p["name"] for p in item["get"]["parameters"] if p["in"] == "header"} == {"If-None-Match"}
        assert "ETag" in item["get"]["responses"]["200"]["headers"]
        assert "304" in item["get"]["responses"]
        assert "ETag" in item["patch"]["responses"]["200"]["headers"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("if_match", [None, "", '"stale"'])
def test_options_on_an_item_describes_it_outside_any_transaction(if_match):
    """OPTIONS runs in autocommit (no request transaction); DRF's metadata asks for the object as if for a PUT,
    which must not take a row lock there (found by schemathesis: a 500)."""
    from conftest import client_for, make_user
    from patients.tests.factories import PatientFactory
    from security.roles import ADMIN

    patient = PatientFactory()
    client = client_for(make_user("options-admin", ADMIN))
    headers = {} if if_match is None else {"HTTP_IF_MATCH": if_match}
    response = client.options(f"/api/v1/patients/{patient.pk}/", **headers)
    assert response.status_code == 200, response.content
    assert "PUT" in response.json()["actions"]
