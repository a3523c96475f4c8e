"""The roles matrix: who may read, write, delete and evaluate on every `/api/v1/` endpoint.

viewer reads; clinician also writes patients and links and evaluates; admin does everything; a user with no
role reads nothing; no token (or a bad one) is a 401 everywhere except the schema, docs and health pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import client_for, make_user
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure, Procedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation, Recommendation, RecommendationEvent
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory
from security.roles import ADMIN, CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db

API = "/api/v1"


@dataclass
class World:
    patient: Patient
    procedure: Procedure
    patient_procedure: PatientProcedure
    recommendation: Recommendation
    spare_recommendation: Recommendation
    patient_recommendation: PatientRecommendation
    event: RecommendationEvent


@pytest.fixture
def world() -> World:
    patient = PatientFactory(id="108", birth_date=date(1950, 1, 1), chronic_pain=True)
    procedure = ProcedureFactory(id="knee-1")
    patient_procedure = PatientProcedureFactory(patient=patient, procedure=procedure)
    recommendation = RecommendationFactory(id="por-1")
    patient_recommendation = PatientRecommendationFactory(patient=patient, recommendation=recommendation)
    event = RecommendationEvent.objects.create(
        patient_id=patient.pk, recommendation_id=recommendation.pk, patient_recommendation=patient_recommendation
    )
    return World(
        patient=patient,
        procedure=procedure,
        patient_procedure=patient_procedure,
        recommendation=recommendation,
        spare_recommendation=RecommendationFactory(id="por-2"),
        patient_recommendation=patient_recommendation,
        event=event,
    )


def performed_at() -> str:
    return (timezone.now() - timedelta(days=3)).isoformat()


# Per resource: list URL, detail URL, a body to create, a body to replace, a body to patch.
def resources(w: World) -> dict[str, dict]:
    return {
        "patients": {
            "list": f"{API}/patients/",
            "detail": f"{API}/patients/{w.patient.pk}/",
            "create": {"id": "new-patient", "name": "Grace Hopper", "sex": "female"},
            "replace": {"name": "Renamed Patient", "sex": "male", "birth_date": "1950-01-01"},
            "patch": {"chronic_pain": False},
        },
        "procedures": {
            "list": f"{API}/procedures/",
            "detail": f"{API}/procedures/{w.procedure.pk}/",
            "create": {"id": "hip-1", "name": "Hip replacement", "department": "orthopaedics", "is_surgery": True},
            "replace": {"name": "Knee arthroscopy", "department": "orthopaedics", "is_surgery": True},
            "patch": {"code": "179344006"},
        },
        "patient-procedures": {
            "list": f"{API}/patient-procedures/",
            "detail": f"{API}/patient-procedures/{w.patient_procedure.pk}/",
            "create": {"patient": w.patient.pk, "procedure": w.procedure.pk, "performed_at": performed_at()},
            "replace": {
                "patient": w.patient.pk,
                "procedure": w.procedure.pk,
                "performed_at": performed_at(),
                "report": "Replaced report.",
            },
            "patch": {"report": "Patched report."},
        },
        "recommendations": {
            "list": f"{API}/recommendations/",
            "detail": f"{API}/recommendations/{w.recommendation.pk}/",
            "create": {"id": "por-123", "name": "Cardiac rehab"},
            "replace": {"name": "Renamed programme", "description": "New text."},
            "patch": {"description": "Patched text."},
        },
        "patient-recommendations": {
            "list": f"{API}/patient-recommendations/",
            "detail": f"{API}/patient-recommendations/{w.patient_recommendation.pk}/",
            "create": {"patient": w.patient.pk, "recommendation": w.spare_recommendation.pk, "reason": "Ward round."},
            "replace": {"patient": w.patient.pk, "recommendation": w.recommendation.pk, "status": "completed"},
            "patch": {"status": "dismissed"},
        },
    }


def read_urls(w: World) -> list[str]:
    urls = [url for r in resources(w).values() for url in (r["list"], r["detail"])]
    return [*urls, f"{API}/events/", f"{API}/events/{w.event.pk}/", f"{API}/analytics/recommendations/"]


def all_requests(w: World) -> list[tuple[str, str, dict | None]]:
    """Every (method, url, body) the API offers, except token/refresh and the public pages."""
    calls: list[tuple[str, str, dict | None]] = [("get", url, None) for url in read_urls(w)]
    for r in resources(w).values():
        calls += [
            ("post", r["list"], r["create"]),
            ("put", r["detail"], r["replace"]),
            ("patch", r["detail"], r["patch"]),
            ("delete", r["detail"], None),
        ]
    calls += [
        ("post", f"{API}/patients/{w.patient.pk}/evaluate/", None),
        ("post", f"{API}/security/register/", {"username": "x", "password": "Long-enough-pass-1"}),
    ]
    return calls


def call(client: APIClient, method: str, url: str, body: dict | None = None):
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


def assert_status(client: APIClient, calls, expected: int) -> None:
    wrong = []
    for method, url, body in calls:
        response = call(client, method, url, body)
        if response.status_code != expected:
            wrong.append(f"{method.upper()} {url} -> {response.status_code} {response.content[:200]!r}")
    assert not wrong, f"expected {expected}:\n" + "\n".join(wrong)


# --- No token, bad token, no role ---------------------------------------------------------------------------


def test_every_endpoint_is_401_without_a_token(anon_client, world):
    assert_status(anon_client, all_requests(world), 401)
    assert Patient.objects.filter(pk="new-patient").exists() is False


def test_401_invites_a_bearer_token(anon_client, world):
    response = anon_client.get(f"{API}/patients/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_every_endpoint_is_401_with_a_garbage_token(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_status(client, all_requests(world), 401)


def test_token_of_a_deleted_user_is_401(world):
    user = make_user("gone", VIEWER)
    client = client_for(user)
    user.delete()
    assert client.get(f"{API}/patients/").status_code == 401


def test_api_root_needs_a_token(anon_client, viewer_client):
    assert anon_client.get(f"{API}/").status_code == 401
    response = viewer_client.get(f"{API}/")
    assert response.status_code == 200
    assert "patients" in response.json()


def test_user_without_role_reads_nothing(no_role_client, world):
    assert_status(no_role_client, [("get", url, None) for url in read_urls(world)], 403)


def test_user_without_role_cannot_evaluate(no_role_client, world):
    assert no_role_client.post(f"{API}/patients/{world.patient.pk}/evaluate/").status_code == 403


@pytest.mark.parametrize("url", ["/api/schema/", "/api/docs/", "/api/redoc/", f"{API}/health/"])
def test_schema_docs_and_health_need_no_token(anon_client, db, url):
    assert anon_client.get(url).status_code == 200


# --- viewer ----------------------------------------------------------------------------------------------


def test_viewer_reads_everything(viewer_client, world):
    assert_status(viewer_client, [("get", url, None) for url in read_urls(world)], 200)


def test_viewer_cannot_write_or_delete_anything(viewer_client, world):
    writes = [call for call in all_requests(world) if call[0] != "get" and "register" not in call[1]]
    writes += [("post", f"{API}/events/", {}), ("post", f"{API}/analytics/recommendations/", {})]
    assert_status(viewer_client, writes, 403)
    world.patient.refresh_from_db()
    assert world.patient.chronic_pain is True
    assert Patient.objects.count() == 1
    assert PatientRecommendation.objects.count() == 1


def test_viewer_cannot_evaluate(viewer_client, world):
    response = viewer_client.post(f"{API}/patients/{world.patient.pk}/evaluate/")
    assert response.status_code == 403
    assert PatientRecommendation.objects.count() == 1


# --- clinician -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["patients", "patient-procedures", "patient-recommendations"])
def test_clinician_creates_and_updates_clinical_records(clinician_client, world, name):
    r = resources(world)[name]
    created = clinician_client.post(r["list"], r["create"], format="json")
    assert created.status_code == 201, created.content
    replaced = clinician_client.put(r["detail"], r["replace"], format="json")
    assert replaced.status_code == 200, replaced.content
    patched = clinician_client.patch(r["detail"], r["patch"], format="json")
    assert patched.status_code == 200, patched.content
    for field, value in r["patch"].items():
        assert patched.json()[field] == value


@pytest.mark.parametrize("name", ["procedures", "recommendations"])
def test_clinician_cannot_change_the_catalogues(clinician_client, world, name):
    r = resources(world)[name]
    calls = [
        ("post", r["list"], r["create"]),
        ("put", r["detail"], r["replace"]),
        ("patch", r["detail"], r["patch"]),
        ("delete", r["detail"], None),
    ]
    assert_status(clinician_client, calls, 403)
    assert clinician_client.get(r["detail"]).status_code == 200


def test_clinician_cannot_delete_anything(clinician_client, world):
    deletes = [("delete", r["detail"], None) for r in resources(world).values()]
    assert_status(clinician_client, deletes, 403)
    assert PatientProcedure.objects.filter(pk=world.patient_procedure.pk).exists()
    assert PatientRecommendation.objects.filter(pk=world.patient_recommendation.pk).exists()


def test_clinician_evaluates_a_patient(clinician_client, world):
    response = clinician_client.post(f"{API}/patients/{world.patient.pk}/evaluate/")
    assert response.status_code == 200, response.content
    assert response.json()["patient"] == world.patient.pk


def test_clinician_cannot_register_users(clinician_client, db):
    payload = {"username": "new", "password": "Long-enough-pass-1", "role": ADMIN}
    assert clinician_client.post(f"{API}/security/register/", payload, format="json").status_code == 403


# --- admin role (not a superuser) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["patients", "procedures", "patient-procedures", "recommendations", "patient-recommendations"]
)
def test_admin_role_creates_replaces_and_patches_everything(admin_client_jwt, world, name):
    r = resources(world)[name]
    assert admin_client_jwt.post(r["list"], r["create"], format="json").status_code == 201
    assert admin_client_jwt.put(r["detail"], r["replace"], format="json").status_code == 200
    assert admin_client_jwt.patch(r["detail"], r["patch"], format="json").status_code == 200


def test_admin_role_deletes_everything(admin_client_jwt, world):
    lone_patient = PatientFactory()
    lone_procedure = ProcedureFactory()
    lone_recommendation = RecommendationFactory()
    urls = [
        f"{API}/patient-recommendations/{world.patient_recommendation.pk}/",
        f"{API}/patient-procedures/{world.patient_procedure.pk}/",
        f"{API}/patients/{lone_patient.pk}/",
        f"{API}/procedures/{lone_procedure.pk}/",
        f"{API}/recommendations/{lone_recommendation.pk}/",
    ]
    assert_status(admin_client_jwt, [("delete", url, None) for url in urls], 204)
    assert not Patient.objects.filter(pk=lone_patient.pk).exists()
    assert not Procedure.objects.filter(pk=lone_procedure.pk).exists()
    assert not Recommendation.objects.filter(pk=lone_recommendation.pk).exists()


def test_admin_role_reads_and_evaluates(admin_client_jwt, world):
    assert_status(admin_client_jwt, [("get", url, None) for url in read_urls(world)], 200)
    assert admin_client_jwt.post(f"{API}/patients/{world.patient.pk}/evaluate/").status_code == 200


def test_events_and_analytics_are_read_only_even_for_admins(admin_client_jwt, world):
    calls = [
        ("post", f"{API}/events/", {}),
        ("delete", f"{API}/events/{world.event.pk}/", None),
        ("patch", f"{API}/events/{world.event.pk}/", {"status": "consumed"}),
        ("post", f"{API}/analytics/recommendations/", {}),
    ]
    assert_status(admin_client_jwt, calls, 405)
    world.event.refresh_from_db()
    assert world.event.status == "pending"


# --- The groups themselves ----------------------------------------------------------------------------------


def group_codenames(role: str) -> set[str]:
    return {
        f"{app}.{codename}"
        for app, codename in Group.objects.get(name=role).permissions.values_list("content_type__app_label", "codename")
    }


def test_role_groups_exist_after_migrate(db):
    assert set(Group.objects.filter(name__in=[VIEWER, CLINICIAN, ADMIN]).values_list("name", flat=True)) == {
        VIEWER,
        CLINICIAN,
        ADMIN,
    }


def test_viewer_group_only_views(db):
    perms = group_codenames(VIEWER)
    assert {
        "patients.view_patient",
        "procedures.view_procedure",
        "procedures.view_patientprocedure",
        "recommendations.view_recommendation",
        "recommendations.view_patientrecommendation",
        "recommendations.view_recommendationevent",
        "recommendations.view_recommendationdailycount",
    } <= perms
    assert all(perm.split(".")[1].startswith("view_") for perm in perms), perms


def test_clinician_group_writes_clinical_records_only(db):
    perms = group_codenames(CLINICIAN)
    assert {
        "patients.add_patient",
        "patients.change_patient",
        "procedures.add_patientprocedure",
        "recommendations.change_patientrecommendation",
        "patients.evaluate_patient",
        "procedures.view_procedure",
    } <= perms
    assert (
        not {
            "procedures.add_procedure",
            "recommendations.change_recommendation",
            "patients.delete_patient",
            "procedures.delete_patientprocedure",
            "recommendations.delete_patientrecommendation",
            "auth.add_user",
        }
        & perms
    )


def test_admin_group_does_everything_including_users(db):
    perms = group_codenames(ADMIN)
    assert {
        "procedures.add_procedure",
        "procedures.delete_procedure",
        "recommendations.change_recommendation",
        "patients.delete_patient",
        "patients.evaluate_patient",
        "recommendations.delete_patientrecommendation",
        "auth.add_user",
        "auth.change_group",
    } <= perms
