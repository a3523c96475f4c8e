"""Issue 12, the read path: no transaction for reads, writes still whole, a cache hit identical to a miss, and
access withdrawn on the next request however a user's rights change (the per-user snapshot never outlives them).

Committed tests (real commits), as in production: a write's tokens are replaced after its commit.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from rest_framework.exceptions import ValidationError

from clinrec import cache as read_cache
from conftest import client_for, make_user
from patients import services as patient_services
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory
from security.roles import CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PATIENT = "/api/v1/patients/108/"


@pytest.fixture
def patient():
    patient = PatientFactory(id="108", name="Henry Walsh")
    PatientProcedureFactory(patient=patient)
    return patient


# --- transactions ----------------------------------------------------------------------------------------------


def test_a_read_runs_outside_any_transaction_and_a_write_inside_one(
    patient, viewer_client, clinician_client, monkeypatch
):
    seen = []
    original = read_cache.current_tokens

    def recording(labels):
        seen.append(connection.in_atomic_block)
        return original(labels)

    monkeypatch.setattr(read_cache, "current_tokens", recording)
    assert viewer_client.get(PATIENT).status_code == 200
    assert seen and not any(seen)  # the role snapshot and the read cache each looked at the tokens

    in_write = []
    update = patient_services.update_patient

    def recording_update(**kwargs):
        in_write.append(connection.in_atomic_block)
        return update(**kwargs)

    monkeypatch.setattr(patient_services, "update_patient", recording_update)
    assert clinician_client.patch(PATIENT, {"name": "Renamed"}, format="json").status_code == 200
    assert in_write == [True]


def test_a_write_failing_with_a_handled_error_after_writing_commits_nothing(patient, clinician_client, monkeypatch):
    update = patient_services.update_patient

    def write_then_refuse(**kwargs):
        update(**kwargs)
        raise ValidationError({"name": ["refused after the write"]})

    monkeypatch.setattr(patient_services, "update_patient", write_then_refuse)
    response = clinician_client.patch(PATIENT, {"name": "Half written"}, format="json")

    assert response.status_code == 400
    assert Patient.objects.get(pk="108").name == "Henry Walsh"
    assert clinician_client.get(PATIENT).json()["name"] == "Henry Walsh"


def test_a_write_crashing_after_writing_commits_nothing(patient, clinician_client, monkeypatch):
    update = patient_services.update_patient

    def write_then_crash(**kwargs):
        update(**kwargs)
        raise RuntimeError("crash after the write")

    monkeypatch.setattr(patient_services, "update_patient", write_then_crash)
    clinician_client.raise_request_exception = False
    response = clinician_client.patch(PATIENT, {"name": "Half written"}, format="json")

    assert response.status_code == 500
    assert Patient.objects.get(pk="108").name == "Henry Walsh"


def test_sqlite_keeps_its_connections_with_health_checks():
    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] > 0
    assert database["CONN_HEALTH_CHECKS"] is True
    if connection.vendor == "sqlite":
        assert database["OPTIONS"]["transaction_mode"] == "IMMEDIATE"  # writers queue instead of failing
        assert "journal_mode=WAL" in database["OPTIONS"]["init_command"]


# --- a hit is the miss, byte for byte ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [PATIENT, "/api/v1/patients/?limit=50", "/api/v1/patient-procedures/?expand=patient,procedure"]
)
def test_a_cache_hit_has_the_headers_and_body_of_the_miss(patient, viewer_client, url):
    miss = viewer_client.get(url)
    hit = viewer_client.get(url)

    assert miss.status_code == hit.status_code == 200
    assert hit.content == miss.content
    assert dict(hit.headers) == dict(miss.headers)


# --- rights withdrawn on the next request -----------------------------------------------------------------------


@pytest.fixture
def clinician():
    return make_user("carla", CLINICIAN)


def test_a_deactivated_user_loses_access_on_the_next_request(patient, clinician):
    client = client_for(clinician)
    assert client.get(PATIENT).status_code == 200

    get_user_model().objects.filter(pk=clinician.pk).update(is_active=False)  # no signal: an update()
    read_cache.bump_versions(get_user_model())  # what every bulk write must do (clinrec/cache.py)
    assert client.get(PATIENT).status_code == 401

    clinician.refresh_from_db()
    clinician.is_active = True
    clinician.save()
    assert client.get(PATIENT).status_code == 200
    clinician.is_active = False
    clinician.save()  # through the ORM: the signal replaces the token
    assert client.get(PATIENT).status_code == 401


def test_a_deleted_user_loses_access_on_the_next_request(patient, clinician):
    client = client_for(clinician)
    assert client.get(PATIENT).status_code == 200

    clinician.delete()

    assert client.get(PATIENT).status_code == 401


def test_a_user_whose_role_is_removed_loses_access_on_the_next_request(patient, clinician):
    client = client_for(clinician)
    assert client.get(PATIENT).status_code == 200

    clinician.groups.clear()

    assert client.get(PATIENT).status_code == 403


def test_a_user_whose_role_changes_gets_the_new_rights_on_the_next_request(patient, clinician):
    client = client_for(clinician)
    assert client.patch(PATIENT, {"name": "By a clinician"}, format="json").status_code == 200

    clinician.groups.set([Group.objects.get(name=VIEWER)])

    assert client.patch(PATIENT, {"name": "By a viewer"}, format="json").status_code == 403
    assert client.get(PATIENT).status_code == 200


def test_a_permission_taken_from_a_role_is_gone_on_the_next_request(patient, clinician):
    client = client_for(clinician)
    assert client.patch(PATIENT, {"name": "Before"}, format="json").status_code == 200

    Group.objects.get(name=CLINICIAN).permissions.remove(Permission.objects.get(codename="change_patient"))

    assert client.patch(PATIENT, {"name": "After"}, format="json").status_code == 403


def test_a_permission_given_to_the_user_directly_counts_on_the_next_request(patient):
    viewer = make_user("vera", VIEWER)
    client = client_for(viewer)
    assert client.patch(PATIENT, {"name": "Before"}, format="json").status_code == 403

    viewer.user_permissions.add(Permission.objects.get(codename="change_patient"))

    assert client.patch(PATIENT, {"name": "After"}, format="json").status_code == 200


def test_a_role_snapshot_is_per_user(patient, clinician):
    viewer = make_user("vera", VIEWER)
    assert client_for(clinician).patch(PATIENT, {"name": "Clinician"}, format="json").status_code == 200
    assert client_for(viewer).patch(PATIENT, {"name": "Viewer"}, format="json").status_code == 403
    assert client_for(clinician).patch(PATIENT, {"name": "Again"}, format="json").status_code == 200
