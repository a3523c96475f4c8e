"""The read cache: reads are served from it, every write makes the next read fresh, and it never skips auth.

Writes made with `queryset.update()` bypass the model signals that refresh the cache, so they show whether a read
came from the cache (the old value) or the database (the new one).
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from clinrec.cache import bump_versions
from conftest import require_service
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients/"
PATIENT = "/api/v1/patients/108/"
LINKS = "/api/v1/patient-procedures/"


def redis_caches(location: str, key_prefix: str) -> dict:
    """CACHES as clinrec/settings.py builds them when REDIS_URL is set."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": key_prefix,
            "TIMEOUT": 300,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": 0.25,
                "SOCKET_TIMEOUT": 0.25,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }


def names(response) -> list[str]:
    return [row["name"] for row in response.data["results"]]


@pytest.fixture
def patient():
    return PatientFactory(id="108", name="Original")


# --- reads come from the cache ------------------------------------------------------------------------------


def test_retrieve_is_served_from_cache_until_versions_are_bumped(viewer_client, patient):
    assert viewer_client.get(PATIENT).data["name"] == "Original"
    Patient.objects.filter(pk="108").update(name="Changed behind the API")

    assert viewer_client.get(PATIENT).data["name"] == "Original"

    bump_versions(Patient)
    assert viewer_client.get(PATIENT).data["name"] == "Changed behind the API"


def test_list_is_served_from_cache_until_versions_are_bumped(viewer_client, patient):
    assert names(viewer_client.get(PATIENTS)) == ["Original"]
    Patient.objects.filter(pk="108").update(name="Changed behind the API")

    assert names(viewer_client.get(PATIENTS)) == ["Original"]

    bump_versions(Patient)
    assert names(viewer_client.get(PATIENTS)) == ["Changed behind the API"]


def test_different_query_strings_are_cached_separately(viewer_client):
    PatientFactory(id="1", name="Alice")
    PatientFactory(id="2", name="Bob")

    assert names(viewer_client.get(PATIENTS, {"search": "alice"})) == ["Alice"]
    assert names(viewer_client.get(PATIENTS, {"search": "bob"})) == ["Bob"]
    assert names(viewer_client.get(PATIENTS)) == ["Alice", "Bob"]


def test_order_of_query_parameters_does_not_matter(viewer_client, patient):
    viewer_client.get(f"{PATIENTS}?limit=5&search=orig")
    Patient.objects.filter(pk="108").update(name="Original, changed behind the API")

    # Same parameters in another order: the same cached page (the stale name proves it came from the cache).
    assert names(viewer_client.get(f"{PATIENTS}?search=orig&limit=5")) == ["Original"]


def test_a_second_identical_read_runs_only_the_auth_queries(viewer_client, patient, django_assert_max_num_queries):
    viewer_client.get(PATIENTS)

    # What remains: SAVEPOINT/RELEASE of ATOMIC_REQUESTS (inside the test's transaction), the token's user and
    # the user's and its groups' permissions. Authentication and permissions run on every request; see
    # test_cached_url_still_requires_permission. The COUNT(*) and the page query are gone.
    with django_assert_max_num_queries(5) as captured:
        response = viewer_client.get(PATIENTS)

    assert response.status_code == 200
    assert len(captured.captured_queries) == 5
    assert not [q for q in captured.captured_queries if "patients_patient" in q["sql"]]


# --- writes make the next read fresh ------------------------------------------------------------------------


def test_patch_makes_next_reads_fresh(clinician_client, patient):
    clinician_client.get(PATIENT)
    clinician_client.get(PATIENTS)

    assert clinician_client.patch(PATIENT, {"name": "Patched"}, format="json").status_code == 200

    assert clinician_client.get(PATIENT).data["name"] == "Patched"
    assert names(clinician_client.get(PATIENTS)) == ["Patched"]


def test_put_makes_next_reads_fresh(clinician_client, patient):
    clinician_client.get(PATIENT)
    clinician_client.get(PATIENTS)

    response = clinician_client.put(PATIENT, {"id": "108", "name": "Replaced", "sex": "male"}, format="json")
    assert response.status_code == 200

    assert clinician_client.get(PATIENT).data["sex"] == "male"
    assert names(clinician_client.get(PATIENTS)) == ["Replaced"]


def test_post_makes_next_list_fresh(clinician_client, patient):
    assert clinician_client.get(PATIENTS).data["count"] == 1

    assert clinician_client.post(PATIENTS, {"id": "109", "name": "Newcomer"}, format="json").status_code == 201

    assert names(clinician_client.get(PATIENTS)) == ["Original", "Newcomer"]


def test_post_makes_a_cached_404_answer_with_the_new_object(clinician_client):
    assert clinician_client.get(PATIENT).status_code == 404

    assert clinician_client.post(PATIENTS, {"id": "108", "name": "Newcomer"}, format="json").status_code == 201

    assert clinician_client.get(PATIENT).data["name"] == "Newcomer"


def test_delete_makes_next_reads_fresh(admin_client_jwt, patient):
    admin_client_jwt.get(PATIENT)
    admin_client_jwt.get(PATIENTS)

    assert admin_client_jwt.delete(PATIENT).status_code == 204

    assert admin_client_jwt.get(PATIENT).status_code == 404
    assert admin_client_jwt.get(PATIENTS).data["count"] == 0


def test_blocked_delete_keeps_the_object_readable(admin_client_jwt, patient):
    PatientProcedureFactory(patient=patient)
    admin_client_jwt.get(PATIENT)

    assert admin_client_jwt.delete(PATIENT).status_code == 409

    assert admin_client_jwt.get(PATIENT).status_code == 200
    assert admin_client_jwt.get(PATIENTS).data["count"] == 1


# --- writes to linked objects -------------------------------------------------------------------------------


def test_patient_name_change_shows_in_expanded_patient_procedures(clinician_client, patient):
    PatientProcedureFactory(patient=patient)
    before = clinician_client.get(LINKS, {"expand": "patient"})
    assert before.data["results"][0]["patient"]["name"] == "Original"

    assert clinician_client.patch(PATIENT, {"name": "Renamed"}, format="json").status_code == 200

    after = clinician_client.get(LINKS, {"expand": "patient"})
    assert after.data["results"][0]["patient"]["name"] == "Renamed"


def test_procedure_change_shows_in_expanded_patient_procedure(admin_client_jwt, patient):
    link = PatientProcedureFactory(patient=patient, procedure=ProcedureFactory(id="hip", name="Hip"))
    url = f"{LINKS}{link.pk}/"
    assert admin_client_jwt.get(url, {"expand": "procedure"}).data["procedure"]["name"] == "Hip"

    admin_client_jwt.patch("/api/v1/procedures/hip/", {"name": "Hip replacement"}, format="json")

    assert admin_client_jwt.get(url, {"expand": "procedure"}).data["procedure"]["name"] == "Hip replacement"


def test_new_patient_procedure_shows_in_filtered_list(clinician_client, patient):
    ProcedureFactory(id="hip")
    assert clinician_client.get(LINKS, {"patient": "108"}).data["count"] == 0

    body = {"patient": "108", "procedure": "hip", "performed_at": "2025-03-01T09:30:00Z"}
    assert clinician_client.post(LINKS, body, format="json").status_code == 201

    assert clinician_client.get(LINKS, {"patient": "108"}).data["count"] == 1


# --- the cache never skips authentication or permissions ----------------------------------------------------


@pytest.mark.parametrize("url", [PATIENTS, PATIENT, LINKS])
def test_cached_url_still_requires_permission(viewer_client, no_role_client, anon_client, patient, url):
    assert viewer_client.get(url).status_code == 200
    assert viewer_client.get(url).status_code == 200  # now cached

    assert no_role_client.get(url).status_code == 403
    assert anon_client.get(url).status_code == 401


def test_viewer_and_admin_get_the_same_data(viewer_client, admin_client_jwt, patient):
    PatientProcedureFactory(patient=patient)

    for url, params in [(PATIENTS, {}), (PATIENT, {}), (LINKS, {"expand": "patient,procedure"})]:
        from_viewer = viewer_client.get(url, params)
        from_admin = admin_client_jwt.get(url, params)
        assert from_viewer.status_code == from_admin.status_code == 200
        assert from_viewer.json() == from_admin.json()


def test_cached_links_follow_the_host_of_each_request(viewer_client):
    Patient.objects.bulk_create([PatientFactory.build(id=f"p-{n:02d}") for n in range(3)])

    internal = viewer_client.get(PATIENTS, {"limit": 1}, HTTP_HOST="localhost")
    public = viewer_client.get(PATIENTS, {"limit": 1}, HTTP_HOST="127.0.0.1")

    assert internal.data["next"].startswith("http://localhost/")
    assert public.data["next"].startswith("http://127.0.0.1/")


# --- Redis down, Redis up -----------------------------------------------------------------------------------


def test_api_answers_quickly_when_redis_is_down(viewer_client, clinician_client, patient):
    started = time.monotonic()
    with override_settings(CACHES=redis_caches("redis://127.0.0.1:1/0", key_prefix="dead")):
        assert type(caches["default"]).__name__ == "RedisCache"
        listed = viewer_client.get(PATIENTS)
        retrieved = viewer_client.get(PATIENT)
        created = clinician_client.post(PATIENTS, {"id": "109", "name": "Newcomer"}, format="json")
        patched = clinician_client.patch(PATIENT, {"name": "Patched"}, format="json")
        fresh = viewer_client.get(PATIENT)
        listed_again = viewer_client.get(PATIENTS)
    elapsed = time.monotonic() - started

    assert (listed.status_code, retrieved.status_code, created.status_code, patched.status_code) == (200, 200, 201, 200)
    assert fresh.data["name"] == "Patched"
    assert listed_again.data["count"] == 2
    # Each Redis call fails at once (connection refused) and costs milliseconds; 2 s is a 100x margin.
    assert elapsed < 2.0


@pytest.fixture
def real_redis():
    """Real Redis (db 15) for one test, under a key prefix of its own; its keys are removed afterwards."""
    url = require_service("redis")
    prefix = f"clinrec-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(url)
    with override_settings(CACHES=redis_caches(url, key_prefix=prefix)):
        yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.mark.services
def test_reads_are_cached_in_redis(real_redis, viewer_client, clinician_client, patient):
    client, prefix = real_redis
    assert settings.CACHES["default"]["KEY_PREFIX"] == prefix

    assert not [key for key in client.keys(f"{prefix}*") if b":api-read:" in key]
    assert viewer_client.get(PATIENTS).status_code == 200

    keys = [key.decode() for key in client.keys(f"{prefix}*")]
    assert any(":api-read:patient-list:" in key for key in keys), keys
    assert any(key.endswith(":api-version:patients.patient") for key in keys), keys

    Patient.objects.filter(pk="108").update(name="Changed behind the API")
    assert names(viewer_client.get(PATIENTS)) == ["Original"]

    clinician_client.patch(PATIENT, {"name": "Patched"}, format="json")
    assert names(viewer_client.get(PATIENTS)) == ["Patched"]
