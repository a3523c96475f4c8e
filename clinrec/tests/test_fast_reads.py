"""A repeated API read is served whole from the process's memory, with exactly the checks of the normal path.

The first read of a patient goes through every middleware and Django REST framework; the same read again is
answered by clinrec.fast_reads before them, byte for byte the same response. These tests hold it to the same
rules as the normal path: every change of the data, the user or the role shows on the very next request.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import rest_framework_simplejwt.tokens as simplejwt_tokens
from django.contrib.auth.models import Group, Permission
from rest_framework_simplejwt.utils import aware_utcnow

from clinrec.cache import token_queries_per_request
from conftest import client_for, make_user
from patients.models import Patient
from patients.tests.factories import PatientFactory
from patients.views import PatientViewSet
from security.roles import CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db

PATIENT = "/api/v1/patients/108/"


@pytest.fixture
def patient():
    return PatientFactory(id="108", name="Original")


@pytest.fixture
def viewer(db):
    return make_user("fast-viewer", VIEWER)


def warmed_up(user):
    """A client of `user` whose read of the patient is kept: the second read was served whole."""
    client = client_for(user)
    assert client.get(PATIENT).status_code == 200
    assert client.get(PATIENT).status_code == 200
    return client


@pytest.fixture
def view_never_runs(monkeypatch):
    """From now on, a request that reaches the patient view fails the test: only a kept response can answer."""

    def arm():
        def refuse(*args, **kwargs):
            raise AssertionError("the request reached the view")

        monkeypatch.setattr(PatientViewSet, "retrieve", refuse)

    return arm


def test_a_repeated_read_is_the_first_response_byte_for_byte(
    patient, viewer, view_never_runs, django_assert_num_queries
):
    client = client_for(viewer)
    first = client.get(PATIENT)
    assert first.status_code == 200
    view_never_runs()

    with django_assert_num_queries(token_queries_per_request()):  # SQLite: none; PostgreSQL: the version tokens
        again = client.get(PATIENT)

    assert again.status_code == 200
    assert list(again.items()) == list(first.items())  # every header, in the same order, ETag included
    assert again.content == first.content


@pytest.mark.parametrize("role", ["viewer", "clinician", "admin"])
def test_a_repeated_read_costs_no_query_but_the_version_check_for_any_role(role, patient, django_assert_num_queries):
    client = client_for(make_user(f"fast-{role}", role))
    assert client.get(PATIENT).status_code == 200
    with django_assert_num_queries(token_queries_per_request()):
        assert client.get(PATIENT).json()["name"] == "Original"


def test_a_write_shows_on_the_next_read(patient, viewer):
    reader = client_for(viewer)
    writer = client_for(make_user("fast-clinician", CLINICIAN))
    assert reader.get(PATIENT).json()["name"] == "Original"
    assert reader.get(PATIENT).json()["name"] == "Original"

    assert writer.patch(PATIENT, {"name": "Renamed"}, format="json").status_code == 200

    assert reader.get(PATIENT).json()["name"] == "Renamed"


def test_a_deactivated_user_is_refused_on_the_next_read(patient, viewer):
    client = warmed_up(viewer)

    viewer.is_active = False
    viewer.save()

    assert client.get(PATIENT).status_code == 401


def test_a_deleted_user_is_refused_on_the_next_read(patient, viewer):
    client = warmed_up(viewer)

    viewer.delete()

    assert client.get(PATIENT).status_code == 401


def test_a_user_whose_role_was_removed_is_refused_on_the_next_read(patient, viewer):
    client = warmed_up(viewer)

    viewer.groups.clear()

    assert client.get(PATIENT).status_code == 403


def test_a_role_that_loses_the_permission_is_refused_on_the_next_read(patient, viewer):
    client = warmed_up(viewer)

    Group.objects.get(name=VIEWER).permissions.remove(Permission.objects.get(codename="view_patient"))

    assert client.get(PATIENT).status_code == 403


def test_a_token_that_expired_since_is_refused(patient, viewer, monkeypatch):
    client = warmed_up(viewer)

    later = aware_utcnow() + timedelta(days=2)
    monkeypatch.setattr(simplejwt_tokens, "aware_utcnow", lambda: later)

    response = client.get(PATIENT)
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


def test_another_users_token_is_checked_not_the_kept_one(patient, viewer):
    warmed_up(viewer)

    roleless = client_for(make_user("fast-nobody", None))
    forged = client_for(viewer)
    forged.credentials(HTTP_AUTHORIZATION="Bearer " + "x" * 40)

    assert roleless.get(PATIENT).status_code == 403
    assert forged.get(PATIENT).status_code == 401


def test_another_accept_header_gets_its_own_rendering(patient, viewer):
    client = client_for(viewer)
    compact = client.get(PATIENT)
    compact_again = client.get(PATIENT)
    indented = client.get(PATIENT, HTTP_ACCEPT="application/json; indent=4")

    assert compact_again.content == compact.content
    assert b'\n    "id": "108"' in indented.content
    assert b"\n" not in compact.content


def test_the_browsable_api_page_of_one_user_is_never_shown_to_another(patient):
    alice = client_for(make_user("alice-viewer", VIEWER))
    bob = client_for(make_user("bob-viewer", VIEWER))

    assert b"alice-viewer" in alice.get(PATIENT, HTTP_ACCEPT="text/html").content
    page = bob.get(PATIENT, HTTP_ACCEPT="text/html")

    assert page.status_code == 200
    assert b"alice-viewer" not in page.content
    assert b"bob-viewer" in page.content


def test_a_change_behind_the_api_is_shown_once_its_version_moves(patient, viewer):
    from clinrec.cache import bump_versions

    client = client_for(viewer)
    assert client.get(PATIENT).json()["name"] == "Original"
    Patient.objects.filter(pk="108").update(name="Changed behind the API")  # no signal: the cache cannot know
    assert client.get(PATIENT).json()["name"] == "Original"

    bump_versions(Patient)

    assert client.get(PATIENT).json()["name"] == "Changed behind the API"
