"""The audit trail: who changed what, when, from where — for API, admin and worker (system) writes."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from conftest import make_user
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import ProcedureFactory
from recommendations.models import PatientRecommendation, RuleSet
from recommendations.services import activate_rule_set, active_rule_set, create_rule_set, evaluate_patient
from security.roles import ADMIN

pytestmark = pytest.mark.django_db


def history_of(client, patient_id: str, **params) -> dict:
    response = client.get(f"/api/v1/patients/{patient_id}/history/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_api_writes_are_recorded_with_the_token_user_address_and_changed_fields(clinician_client):
    created = clinician_client.post(
        "/api/v1/patients/", {"id": "p1", "name": "Ada", "sex": "female"}, REMOTE_ADDR="10.1.2.3"
    )
    assert created.status_code == 201
    clinician_client.patch("/api/v1/patients/p1/", {"name": "Ada Lovelace"}, REMOTE_ADDR="10.1.2.4")

    entries = history_of(clinician_client, "p1")["results"]

    update, creation = entries  # newest first
    assert (update["model"], update["object_id"], update["action"]) == ("patient", "p1", "updated")
    assert (update["user"], update["source"], update["client_address"]) == ("clinician-user", "api", "10.1.2.4")
    assert update["changes"] == [{"field": "name", "old": "Ada", "new": "Ada Lovelace"}]
    assert (creation["action"], creation["client_address"]) == ("created", "10.1.2.3")
    assert {"field": "name", "old": None, "new": "Ada"} in creation["changes"]


def test_procedures_and_recommendations_of_the_patient_are_in_its_history(clinician_client):
    patient = PatientFactory(id="p2")
    procedure = ProcedureFactory(id="hip")
    clinician_client.post(
        "/api/v1/patient-procedures/",
        {"patient": "p2", "procedure": "hip", "performed_at": "2026-01-02T10:00:00Z"},
    )
    link = PatientRecommendation.objects.create(patient=patient, recommendation_id=_definition().pk)
    link_id = link.pk
    link.delete()

    entries = history_of(clinician_client, "p2")["results"]

    kinds = [(entry["model"], entry["action"]) for entry in entries]
    assert kinds[:3] == [
        ("patient_recommendation", "deleted"),
        ("patient_recommendation", "created"),
        ("patient_procedure", "created"),
    ]
    assert entries[0]["object_id"] == str(link_id)
    assert entries[2]["user"] == "clinician-user"
    assert {"field": "procedure_id", "old": None, "new": procedure.pk} in entries[2]["changes"]


def _definition():
    from recommendations.tests.factories import RecommendationFactory

    return RecommendationFactory()


def test_worker_writes_are_recorded_as_system_with_no_user(clinician_client):
    from datetime import date

    PatientFactory(id="p3", birth_date=date(1930, 1, 1), chronic_pain=True, bmi=35.0)
    evaluate_patient(patient_id="p3")  # as the worker would: no request

    entry = history_of(clinician_client, "p3")["results"][0]

    assert (entry["model"], entry["action"]) == ("patient_recommendation", "created")
    assert (entry["user"], entry["source"], entry["client_address"]) == (None, "system", None)


def test_admin_writes_are_recorded_with_the_admin_user(client, clinician_client):
    staff = make_user("ward-admin", ADMIN, is_staff=True)
    client.force_login(staff)
    patient = PatientFactory(id="p4", name="Before")
    form = {
        "name": "After",
        "birth_date": "1980-06-15",
        "sex": "female",
        "email": "",
        "height_cm": "170",
        "weight_kg": "70",
        "bmi": "24.2",
        "procedures-TOTAL_FORMS": "0",
        "procedures-INITIAL_FORMS": "0",
        "recommendations-TOTAL_FORMS": "0",
        "recommendations-INITIAL_FORMS": "0",
    }
    response = client.post(f"/admin/patients/patient/{patient.pk}/change/", form, REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 302, response.content

    entry = history_of(clinician_client, "p4")["results"][0]

    assert (entry["user"], entry["source"], entry["client_address"]) == ("ward-admin", "admin", "10.9.9.9")
    assert {"field": "name", "old": "Before", "new": "After"} in entry["changes"]
    # And the admin shows the record's history.
    page = client.get(f"/admin/patients/patient/{patient.pk}/history/")
    assert page.status_code == 200 and b"ward-admin" in page.content


def test_history_is_paginated_newest_first(clinician_client):
    patient = PatientFactory(id="p5", name="v0")
    for number in range(1, 6):
        patient.name = f"v{number}"
        patient.save()

    page = history_of(clinician_client, "p5", limit=2, offset=1)

    assert page["count"] == 6
    assert [entry["changes"][0]["new"] for entry in page["results"]] == ["v4", "v3"]
    assert page["next"] and page["previous"]


def test_history_reads_are_for_clinicians_and_admins_and_never_write(viewer_client, clinician_client):
    PatientFactory(id="p6")
    assert viewer_client.get("/api/v1/patients/p6/history/").status_code == 403
    assert clinician_client.get("/api/v1/patients/nobody/history/").status_code == 404
    for method in ("post", "put", "patch", "delete"):
        assert getattr(clinician_client, method)("/api/v1/patients/p6/history/").status_code == 405


def test_rule_set_activation_records_the_deactivated_version_too(admin_client_jwt):
    first = active_rule_set()
    user = get_user_model().objects.get(username="admin-user")
    second = create_rule_set(parameters={}, created_by=user, note="n")
    activate_rule_set(rule_set=second, activated_by=user, reason="test")

    deactivation = RuleSet.history.filter(version=first.version).latest("history_date")
    assert deactivation.active is False and deactivation.history_type == "~"


def test_user_accounts_are_audited_without_their_password():
    user = make_user("someone", None)
    user.email = "someone@example.org"
    user.save()

    record = user.history.latest("history_date")
    assert record.email == "someone@example.org" and record.history_source == "system"
    assert not hasattr(record, "password")


def test_merge_moves_are_in_the_targets_history(admin_client_jwt, clinician_client):
    from procedures.tests.factories import PatientProcedureFactory

    PatientFactory(id="keep")
    PatientProcedureFactory(patient=PatientFactory(id="dup"))
    assert admin_client_jwt.post("/api/v1/patients/keep/merge/", {"source": "dup"}).status_code == 201

    entries = history_of(clinician_client, "keep")["results"]

    moved = next(entry for entry in entries if entry["model"] == "patient_procedure" and entry["action"] == "updated")
    assert moved["user"] == "admin-user"
    assert moved["changes"] == [{"field": "patient_id", "old": "dup", "new": "keep"}]
    assert PatientProcedure.objects.get().patient_id == "keep"
    assert Patient.objects.get(pk="dup").history.latest("history_date").merged_into_id == "keep"


def test_the_user_admin_shows_an_accounts_history(client):
    admin_user = make_user("root", None, is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    target = make_user("someone", None)
    target.first_name = "Some"
    target.save()

    page = client.get(f"/admin/auth/user/{target.pk}/history/")

    assert page.status_code == 200
    rows = page.content.decode()
    assert rows.count("<td>Changed</td>") == 1 and rows.count("<td>Created</td>") == 1


def test_a_history_page_costs_the_same_queries_however_long_the_history(clinician_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from procedures.tests.factories import PatientProcedureFactory
    from recommendations.tests.factories import PatientRecommendationFactory

    def queries_for(patient_id: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            # One page holding all three kinds: at most two queries per kind, never one per entry.
            assert clinician_client.get(f"/api/v1/patients/{patient_id}/history/?limit=500").status_code == 200
        return len(captured)

    short, long = PatientFactory(id="short"), PatientFactory(id="long")
    PatientProcedureFactory(patient=short)
    PatientRecommendationFactory(patient=short)
    for row in PatientProcedureFactory.create_batch(20, patient=long):
        row.report = "Edited."
        row.save()
    PatientRecommendationFactory.create_batch(10, patient=long, status="completed")

    queries_for("short")  # the first request takes the user's role snapshot (security/authentication.py)
    assert queries_for("short") == queries_for("long")


def test_history_cannot_be_edited_or_reverted_in_the_admin(client):
    from django.contrib import admin

    assert not [model for model in admin.site._registry if model.__name__.startswith("Historical")]
    client.force_login(make_user("root", None, is_staff=True, is_superuser=True))
    patient = PatientFactory(id="p7", name="First")
    patient.name = "Second"
    patient.save()
    first = patient.history.earliest("history_date")

    revert = client.post(f"/admin/patients/patient/p7/history/{first.history_id}/", {"name": "First"})

    assert revert.status_code == 200  # the old version is shown again, read-only: nothing is written
    assert Patient.objects.get(pk="p7").name == "Second"
    assert patient.history.count() == 2
