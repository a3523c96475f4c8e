"""`/api/v1/rule-sets/`: versions of the rules' parameters, as a clinical lead and an auditor use them.

Versions are created inactive and never edited; exactly one is active; activating another is recorded (who,
when, why) and changes what the next evaluation does, never what past recommendations say.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conftest import client_for, make_user
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.engine import EngineConfig, parameters_from_config
from recommendations.models import PatientRecommendation, RuleSet, RuleSetActivation
from recommendations.services import active_rule_set, evaluate_patient
from security.roles import ADMIN

pytestmark = pytest.mark.django_db

URL = "/api/v1/rule-sets/"
VERSION_KEYS = {
    "version",
    "active",
    "parameters",
    "note",
    "created_by",
    "created_at",
    "activated_by",
    "activated_at",
    "activation_reason",
}


def detail(version: int) -> str:
    return f"{URL}{version}/"


def activate(client, version: int, reason: str = "Agreed at the clinical governance meeting."):
    return client.post(f"{detail(version)}activate/", {"reason": reason}, format="json")


@pytest.fixture
def admin_user(db):
    return make_user("lead", ADMIN)


@pytest.fixture
def lead_client(admin_user):
    return client_for(admin_user)


def new_version(client, parameters: dict, note: str = "") -> dict:
    response = client.post(URL, {"parameters": parameters, "note": note}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- the first version ---------------------------------------------------------------------------------------


def test_first_version_exists_after_migrate_active_with_the_settings_values(viewer_client):
    response = viewer_client.get(URL)

    assert response.status_code == 200
    (first,) = response.json()["results"]
    assert set(first) == VERSION_KEYS
    assert first["version"] == 1
    assert first["active"] is True
    assert first["parameters"] == parameters_from_config(EngineConfig())
    assert first["activation_reason"]


def test_first_version_on_first_use_keeps_the_environments_departments(settings):
    RuleSetActivation.objects.all().delete()
    RuleSet.objects.all().delete()
    settings.ADMISSIBLE_DEPARTMENTS_FOR_REHAB = [" Orthopaedics", "Neurosurgery "]
    settings.WEIGHT_MANAGEMENT_MIN_BMI = 35.0
    patient = PatientFactory(bmi=33.0)
    spine = ProcedureFactory(name="Lumbar laminectomy", department="neurosurgery", is_surgery=True)
    PatientProcedureFactory(patient=patient, procedure=spine, performed_at=timezone.now())

    evaluation = evaluate_patient(patient_id=patient.pk)

    assert [item.rule for item in evaluation.recommendations] == ["post_op_rehab"]
    first = RuleSet.objects.get()
    assert (first.version, first.active) == (1, True)
    assert first.parameters["post_op_rehab"]["departments"] == ["neurosurgery", "orthopaedics"]
    assert first.parameters["weight_management"]["min_bmi"] == 35.0


def test_an_empty_department_setting_becomes_the_rehab_rule_switched_off(settings):
    RuleSetActivation.objects.all().delete()
    RuleSet.objects.all().delete()
    settings.ADMISSIBLE_DEPARTMENTS_FOR_REHAB = []

    parameters = active_rule_set().parameters

    assert parameters["post_op_rehab"]["enabled"] is False
    assert parameters["post_op_rehab"]["departments"] == ["orthopaedics"]


# --- reading --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_name", ["viewer_client", "clinician_client", "admin_client_jwt"])
def test_every_role_reads_the_versions(request, client_name):
    client = request.getfixturevalue(client_name)

    assert client.get(URL).status_code == 200
    assert client.get(detail(1)).json()["version"] == 1


def test_unknown_version_is_404(viewer_client):
    assert viewer_client.get(detail(99)).status_code == 404


def test_without_a_token_it_is_401(anon_client):
    assert anon_client.get(URL).status_code == 401


# --- creating versions ----------------------------------------------------------------------------------------


def test_post_creates_a_new_inactive_version_over_the_active_ones_values(lead_client):
    body = new_version(lead_client, {"weight_management": {"min_bmi": 32.5}}, note="NICE 2026 threshold")

    assert body["version"] == 2
    assert body["active"] is False
    assert body["created_by"] == "lead"
    assert body["note"] == "NICE 2026 threshold"
    assert body["activated_by"] is None and body["activated_at"] is None
    expected = parameters_from_config(EngineConfig())
    expected["weight_management"]["min_bmi"] = 32.5
    assert body["parameters"] == expected
    assert active_rule_set().version == 1


@pytest.mark.parametrize("client_name", ["viewer_client", "clinician_client"])
def test_only_the_admin_role_creates_versions(request, client_name):
    client = request.getfixturevalue(client_name)

    response = client.post(URL, {"parameters": {"weight_management": {"min_bmi": 32}}}, format="json")

    assert response.status_code == 403
    assert RuleSet.objects.count() == 1


@pytest.mark.parametrize(
    ("parameters", "path"),
    [
        ({"weight_management": {"min_bmi": 0}}, ["weight_management", "min_bmi"]),
        ({"weight_management": {"min_bmi": 200}}, ["weight_management", "min_bmi"]),
        ({"weight_management": {"min_bmi": "thirty"}}, ["weight_management", "min_bmi"]),
        ({"post_op_rehab": {"departments": []}}, ["post_op_rehab", "departments"]),
        ({"post_op_rehab": {"departments": [" ", ""]}}, ["post_op_rehab", "departments"]),
        ({"post_op_rehab": {"departments": "orthopaedics"}}, ["post_op_rehab", "departments"]),
        ({"post_op_rehab": {"departments": ["ortho\u0010paedics"]}}, ["post_op_rehab", "departments"]),
        # PostgreSQL stores no NUL in JSON: this used to be a 500 there.
        ({"post_op_rehab": {"departments": ["ortho\u0000paedics"]}}, ["post_op_rehab", "departments"]),
        ({"post_op\u0000rehab": {"enabled": True}}, ["post_op\u0000rehab"]),
        ({"post_op_rehab": {"window_days": -3}}, ["post_op_rehab", "window_days"]),
        ({"post_op_rehab": {"window_days": 7.5}}, ["post_op_rehab", "window_days"]),
        ({"physical_therapy": {"min_age": 0}}, ["physical_therapy", "min_age"]),
        ({"physical_therapy": {"enabled": "yes"}}, ["physical_therapy", "enabled"]),
        ({"physical_therapy": {"min_agee": 70}}, ["physical_therapy", "min_agee"]),
        ({"smoking": {"enabled": True}}, ["smoking"]),
    ],
)
def test_invalid_parameters_are_400_naming_the_field_and_create_nothing(lead_client, parameters, path):
    response = lead_client.post(URL, {"parameters": parameters}, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["parameters"]
    for key in path:
        error = error[key]
    assert isinstance(error, list) and error[0]
    assert RuleSet.objects.count() == 1


def test_parameters_that_are_not_an_object_are_400(lead_client):
    response = lead_client.post(URL, {"parameters": [1, 2]}, format="json")

    assert response.status_code == 400
    assert "parameters" in response.json()
    assert RuleSet.objects.count() == 1


def test_versions_cannot_be_edited_or_deleted_through_the_api(lead_client):
    assert lead_client.patch(detail(1), {"parameters": {}}, format="json").status_code == 405
    assert lead_client.put(detail(1), {"parameters": {}}, format="json").status_code == 405
    assert lead_client.delete(detail(1)).status_code == 405
    assert RuleSet.objects.get(version=1).parameters == parameters_from_config(EngineConfig())


# --- activation -----------------------------------------------------------------------------------------------


def test_activation_records_who_when_and_why_and_keeps_the_previous_version_readable(lead_client, viewer_client):
    new_version(lead_client, {"weight_management": {"min_bmi": 32}})
    before = timezone.now()

    response = activate(lead_client, 2, "Raise the BMI threshold, audit 2026-11")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["active"]) == (2, True)
    assert body["activated_by"] == "lead"
    assert body["activation_reason"] == "Raise the BMI threshold, audit 2026-11"
    assert parse_datetime(body["activated_at"]) >= before
    previous = viewer_client.get(detail(1)).json()
    assert previous["active"] is False
    assert previous["parameters"]["weight_management"]["min_bmi"] == 30.0
    assert list(RuleSet.objects.filter(active=True).values_list("version", flat=True)) == [2]
    record = RuleSetActivation.objects.filter(rule_set_id=2).get()
    assert (record.previous_version, record.activated_by.username, record.reason) == (
        1,
        "lead",
        "Raise the BMI threshold, audit 2026-11",
    )


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_activation_without_a_reason_is_400_and_changes_nothing(lead_client, body):
    new_version(lead_client, {"weight_management": {"min_bmi": 32}})

    response = lead_client.post(f"{detail(2)}activate/", body, format="json")

    assert response.status_code == 400
    assert "reason" in response.json()
    assert active_rule_set().version == 1
    assert not RuleSetActivation.objects.filter(rule_set_id=2).exists()


def test_activating_the_active_version_is_409(lead_client):
    response = activate(lead_client, 1)

    assert response.status_code == 409
    assert RuleSetActivation.objects.count() == 1


def test_activating_an_unknown_version_is_404(lead_client):
    assert activate(lead_client, 42).status_code == 404


@pytest.mark.parametrize("client_name", ["viewer_client", "clinician_client"])
def test_only_the_admin_role_activates(request, lead_client, client_name):
    new_version(lead_client, {"weight_management": {"min_bmi": 32}})

    response = activate(request.getfixturevalue(client_name), 2)

    assert response.status_code == 403
    assert active_rule_set().version == 1


def test_the_database_refuses_two_active_versions():
    RuleSet.objects.create(version=2, parameters=RuleSet.objects.get(version=1).parameters)

    with pytest.raises(IntegrityError), transaction.atomic():
        RuleSet.objects.filter(version=2).update(active=True)


# --- activation and evaluation --------------------------------------------------------------------------------


def test_activation_changes_the_next_evaluation_and_nothing_in_the_past(lead_client, clinician_client):
    earlier = PatientFactory(bmi=31.0)
    evaluate_patient(patient_id=earlier.pk)
    made_under_v1 = PatientRecommendation.objects.get(patient=earlier)
    provenance_before = made_under_v1.provenance
    new_version(lead_client, {"weight_management": {"min_bmi": 32}})
    assert activate(lead_client, 2).status_code == 200

    later = PatientFactory(bmi=31.0)
    heavier = PatientFactory(bmi=33.0)
    nothing = clinician_client.post(f"/api/v1/patients/{later.pk}/evaluate/").json()
    heavier_body = clinician_client.post(f"/api/v1/patients/{heavier.pk}/evaluate/").json()

    assert nothing["recommendations"] == []
    (item,) = heavier_body["recommendations"]
    assert item["provenance"]["rule_set"] == 2
    assert item["provenance"]["facts"] == {"bmi": 33.0, "min_bmi": 32.0}
    made_under_v1.refresh_from_db()
    assert made_under_v1.provenance == provenance_before
    assert made_under_v1.provenance["rule_set"] == 1
    assert made_under_v1.status == "active"


def test_a_rule_switched_off_no_longer_fires(lead_client):
    patient = PatientFactory(birth_date=date(timezone.localdate().year - 80, 1, 1), chronic_pain=True, bmi=34.0)
    new_version(lead_client, {"physical_therapy": {"enabled": False}})
    activate(lead_client, 2)

    evaluation = evaluate_patient(patient_id=patient.pk)

    assert [item.rule for item in evaluation.recommendations] == ["weight_management"]
