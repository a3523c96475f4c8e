"""The read cache: reads are served from it, every write makes the next read fresh, and it never skips auth.

Writes made with `queryset.update()` bypass the model signals that refresh the cache, so they show whether a read
came from the cache (the old value) or the database (the new one). Tests marked `committed` run with real
commits, as in production, where a write's version tokens are replaced after its commit; the others run
inside one transaction that never commits, where reads see the writes of their own transaction.
The fault tests (Redis stopped, frozen, restarted from its dump, partitioned) are in test_cache_faults.py.
"""

from __future__ import annotations

import gc
import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection, models, transaction
from django.db.models.signals import post_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext, isolate_apps
from rest_framework import viewsets
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from clinrec.cache import (
    CachedReadMixin,
    bump_versions,
    cached_models,
    clear_read_cache,
    read_cache_key,
    token_queries_per_request,
    tracked_models,
)
from clinrec.models import CacheVersion
from clinrec.redis_breaker import CircuitBreaker, _breakers, reset_circuit_breakers
from clinrec.settings import redis_cache
from conftest import require_service
from patients.models import Patient
from patients.serializers import PatientSerializer
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import Delivery, Notification, RecommendationDailyCount, RecommendationEvent

pytestmark = pytest.mark.django_db
committed = pytest.mark.django_db(transaction=True, serialized_rollback=True)

PATIENTS = "/api/v1/patients/"
PATIENT = "/api/v1/patients/108/"
LINKS = "/api/v1/patient-procedures/"


def token(model: type[models.Model]) -> str:
    return CacheVersion.objects.get(label=model._meta.label_lower).token


def names(response) -> list[str]:
    return [row["name"] for row in response.json()["results"]]


@pytest.fixture
def patient():
    return PatientFactory(id="108", name="Original")


# --- reads come from the cache ------------------------------------------------------------------------------


@committed
def test_retrieve_is_served_from_cache_until_versions_are_bumped(viewer_client, patient):
    assert viewer_client.get(PATIENT).json()["name"] == "Original"
    Patient.objects.filter(pk="108").update(name="Changed behind the API")

    assert viewer_client.get(PATIENT).json()["name"] == "Original"

    bump_versions(Patient)
    assert viewer_client.get(PATIENT).json()["name"] == "Changed behind the API"


@committed
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


@committed  # production's shape: a read outside any transaction (inside one, it would take a savepoint)
@pytest.mark.parametrize("role_client", ["viewer_client", "clinician_client", "admin_client_jwt"])
@pytest.mark.parametrize("url", [PATIENTS, PATIENT])
def test_a_cache_hit_runs_no_database_query_for_any_role(role_client, url, request, patient, django_assert_num_queries):
    """Issue 12: no transaction for a read, the user and its permissions from its snapshot, the version tokens
    from the connection's memo (SQLite's data_version says nothing was committed since). On PostgreSQL the
    tokens cost one query per request: nothing there orders a bump before the next read without a round trip."""
    client = request.getfixturevalue(role_client)
    client.get(url)

    with django_assert_num_queries(token_queries_per_request()):
        response = client.get(url)

    assert response.status_code == 200


# --- writes make the next read fresh ------------------------------------------------------------------------


@committed
def test_patch_makes_next_reads_fresh(clinician_client, patient):
    clinician_client.get(PATIENT)
    clinician_client.get(PATIENTS)

    assert clinician_client.patch(PATIENT, {"name": "Patched"}, format="json").status_code == 200

    assert clinician_client.get(PATIENT).json()["name"] == "Patched"
    assert names(clinician_client.get(PATIENTS)) == ["Patched"]


@committed
def test_put_makes_next_reads_fresh(clinician_client, patient):
    clinician_client.get(PATIENT)
    clinician_client.get(PATIENTS)

    response = clinician_client.put(PATIENT, {"id": "108", "name": "Replaced", "sex": "male"}, format="json")
    assert response.status_code == 200

    assert clinician_client.get(PATIENT).json()["sex"] == "male"
    assert names(clinician_client.get(PATIENTS)) == ["Replaced"]


@committed
def test_post_makes_next_list_fresh(clinician_client, patient):
    assert clinician_client.get(PATIENTS).json()["count"] == 1

    assert clinician_client.post(PATIENTS, {"id": "109", "name": "Newcomer"}, format="json").status_code == 201

    assert names(clinician_client.get(PATIENTS)) == ["Original", "Newcomer"]


@committed
def test_post_makes_a_cached_404_answer_with_the_new_object(clinician_client):
    assert clinician_client.get(PATIENT).status_code == 404

    assert clinician_client.post(PATIENTS, {"id": "108", "name": "Newcomer"}, format="json").status_code == 201

    assert clinician_client.get(PATIENT).json()["name"] == "Newcomer"


@committed
def test_delete_makes_next_reads_fresh(admin_client_jwt, patient):
    admin_client_jwt.get(PATIENT)
    admin_client_jwt.get(PATIENTS)

    assert admin_client_jwt.delete(PATIENT).status_code == 204

    assert admin_client_jwt.get(PATIENT).status_code == 404
    assert admin_client_jwt.get(PATIENTS).json()["count"] == 0


@committed
def test_blocked_delete_keeps_the_object_readable(admin_client_jwt, patient):
    PatientProcedureFactory(patient=patient)
    admin_client_jwt.get(PATIENT)

    assert admin_client_jwt.delete(PATIENT).status_code == 409

    assert admin_client_jwt.get(PATIENT).status_code == 200
    assert admin_client_jwt.get(PATIENTS).json()["count"] == 1


# --- writes to linked objects -------------------------------------------------------------------------------


@committed
def test_patient_name_change_shows_in_expanded_patient_procedures(clinician_client, patient):
    PatientProcedureFactory(patient=patient)
    before = clinician_client.get(LINKS, {"expand": "patient"})
    assert before.json()["results"][0]["patient"]["name"] == "Original"

    assert clinician_client.patch(PATIENT, {"name": "Renamed"}, format="json").status_code == 200

    after = clinician_client.get(LINKS, {"expand": "patient"})
    assert after.json()["results"][0]["patient"]["name"] == "Renamed"


@committed
def test_procedure_change_shows_in_expanded_patient_procedure(admin_client_jwt, patient):
    link = PatientProcedureFactory(patient=patient, procedure=ProcedureFactory(id="hip", name="Hip"))
    url = f"{LINKS}{link.pk}/"
    assert admin_client_jwt.get(url, {"expand": "procedure"}).json()["procedure"]["name"] == "Hip"

    admin_client_jwt.patch("/api/v1/procedures/hip/", {"name": "Hip replacement"}, format="json")

    assert admin_client_jwt.get(url, {"expand": "procedure"}).json()["procedure"]["name"] == "Hip replacement"


@committed
def test_new_patient_procedure_shows_in_filtered_list(clinician_client, patient):
    ProcedureFactory(id="hip")
    assert clinician_client.get(LINKS, {"patient": "108"}).json()["count"] == 0

    body = {"patient": "108", "procedure": "hip", "performed_at": "2025-03-01T09:30:00Z"}
    assert clinician_client.post(LINKS, body, format="json").status_code == 201

    assert clinician_client.get(LINKS, {"patient": "108"}).json()["count"] == 1


# --- version tokens: in the database, replaced after the commit ---------------------------------------------


@committed
def test_a_write_replaces_its_models_token_after_the_commit_not_before(patient):
    before = token(Patient)

    with transaction.atomic():
        patient.name = "Renamed"
        patient.save()
        assert token(Patient) == before  # other readers keep the old token until the data is committed

    assert token(Patient) != before


@committed
def test_a_rolled_back_write_keeps_every_token(patient):
    before = token(Patient)

    with pytest.raises(RuntimeError), transaction.atomic():
        patient.save()
        raise RuntimeError("the request failed")

    assert token(Patient) == before


@committed
def test_one_upsert_replaces_the_tokens_of_every_model_a_transaction_wrote(patient):
    procedure = ProcedureFactory()
    before = {model: token(model) for model in (Patient, type(procedure), PatientProcedure)}

    with CaptureQueriesContext(connection) as captured, transaction.atomic():
        patient.save()
        procedure.save()
        PatientProcedure.objects.create(patient=patient, procedure=procedure, performed_at="2025-03-01T09:30Z")

    sql = [query["sql"] for query in captured.captured_queries]
    token_writes = [n for n, statement in enumerate(sql) if "clinrec_cacheversion" in statement]
    assert len(token_writes) == 1
    assert token_writes[0] > max(n for n, statement in enumerate(sql) if "procedures_patientprocedure" in statement)
    assert all(token(model) != old for model, old in before.items())


@committed
def test_a_reader_that_raced_a_writer_never_serves_its_old_data(viewer_client, clinician_client, patient):
    request = Request(APIRequestFactory().get(PATIENT))
    assert viewer_client.get(PATIENT).status_code == 200
    assert cache.get(read_cache_key("patient-detail", (Patient,), request)) is not None  # the API's own key
    clear_read_cache()

    # A slow reader takes the tokens and reads the patient from the database...
    key = read_cache_key("patient-detail", (Patient,), request)
    old_data = PatientSerializer(Patient.objects.get(pk="108")).data
    # ...meanwhile a writer commits and its response is sent...
    assert clinician_client.patch(PATIENT, {"name": "Patched"}, format="json").status_code == 200
    # ...then the reader stores what it read, under the tokens it took.
    cache.set(key, old_data)

    assert viewer_client.get(PATIENT).json()["name"] == "Patched"
    assert cache.get(key)["name"] == "Original"  # still there, under a token nobody asks for any more


def test_inside_an_open_transaction_reads_see_its_own_writes(viewer_client, patient):
    # This test is one transaction that never commits: the write's shared token is never replaced.
    assert viewer_client.get(PATIENT).json()["name"] == "Original"
    shared = token(Patient)

    Patient.objects.filter(pk="108").update(name="Not committed yet")
    bump_versions(Patient)

    assert viewer_client.get(PATIENT).json()["name"] == "Not committed yet"
    assert token(Patient) == shared


# --- every model a cached read shows is invalidated, with no list to keep; the others cost nothing ------------


def test_the_models_cached_reads_show_are_found_in_their_viewsets():
    shown = {model._meta.label for model in cached_models()}

    assert shown == {
        "patients.Patient",
        "procedures.Procedure",
        "procedures.PatientProcedure",
        "recommendations.Recommendation",
        "recommendations.PatientRecommendation",
    }
    tracked = {model._meta.label for model in tracked_models()}
    assert shown <= tracked
    assert {"auth.User", "auth.Group", "auth.Permission"} <= tracked  # role snapshots (security.authentication)
    assert not tracked & {
        "recommendations.RecommendationEvent",
        "recommendations.Delivery",
        "recommendations.Notification",
        "recommendations.RecommendationDailyCount",
    }


@committed
def test_a_save_of_any_model_a_cached_read_shows_replaces_its_token():
    for model in cached_models():
        before = CacheVersion.objects.filter(label=model._meta.label_lower).values_list("token", flat=True).first()
        instance = model()
        instance.skip_history_when_saving = True  # audit: a blank instance has nothing to record
        post_save.send(sender=model, instance=instance, created=True, raw=False, using="default", update_fields=None)
        assert token(model) != before, model


@committed
@pytest.mark.parametrize("model", [RecommendationEvent, Delivery, Notification, RecommendationDailyCount])
def test_writes_no_cached_read_shows_replace_no_token(model):
    before = dict(CacheVersion.objects.values_list("label", "token"))

    post_save.send(sender=model, instance=model(), created=True, raw=False, using="default", update_fields=None)
    bump_versions(model)  # what a bulk write would call

    assert dict(CacheVersion.objects.values_list("label", "token")) == before
    request = Request(APIRequestFactory().get("/api/v1/events/"))
    assert read_cache_key("event-list", (model,), request) is None  # and a read of it is never cached


@committed
@isolate_apps("patients")
def test_a_model_a_new_cached_read_shows_is_invalidated_like_the_others():
    class Allergy(models.Model):  # noqa: DJ008 - a new resource, listed nowhere
        class Meta:
            app_label = "patients"

    class AllergyViewSet(CachedReadMixin, viewsets.ReadOnlyModelViewSet):
        queryset = Allergy.objects.all()

    request = Request(APIRequestFactory().get("/api/v1/allergies/"))
    cached_models.cache_clear()  # what a process finds when it starts with the viewset in place
    try:
        assert read_cache_key("allergy-list", (Allergy,), request) is None  # no token yet: not cached at all

        post_save.send(sender=Allergy, instance=Allergy(), created=True, raw=False, using="default", update_fields=None)
        first = read_cache_key("allergy-list", (Allergy,), request)
        post_save.send(sender=Allergy, instance=Allergy(), created=True, raw=False, using="default", update_fields=None)

        assert first is not None
        assert read_cache_key("allergy-list", (Allergy,), request) not in {None, first}
    finally:
        del AllergyViewSet
        gc.collect()  # drop the test's viewset from CachedReadMixin's subclasses
        cached_models.cache_clear()


@committed
def test_migrate_replaces_every_token(patient):
    before = dict(CacheVersion.objects.values_list("label", "token"))

    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")  # what migrate and flush send

    after = dict(CacheVersion.objects.values_list("label", "token"))
    assert set(after) == {model._meta.label_lower for model in tracked_models()}
    assert all(after[label] != before.get(label) for label in after)


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

    assert internal.json()["next"].startswith("http://localhost/")
    assert public.json()["next"].startswith("http://127.0.0.1/")


# --- Redis down, Redis up -----------------------------------------------------------------------------------


@override_settings(CACHE_CIRCUIT_OPEN_SECONDS=60)
def test_api_answers_from_the_database_when_redis_is_down(viewer_client, clinician_client, patient):
    reset_circuit_breakers()
    with override_settings(CACHES={"default": redis_cache("redis://127.0.0.1:1/0", key_prefix="dead")}):
        assert type(caches["default"]).__name__ == "RedisCache"
        listed = viewer_client.get(PATIENTS)
        retrieved = viewer_client.get(PATIENT)
        created = clinician_client.post(PATIENTS, {"id": "109", "name": "Newcomer"}, format="json")
        patched = clinician_client.patch(PATIENT, {"name": "Patched"}, format="json")
        fresh = viewer_client.get(PATIENT)
        listed_again = viewer_client.get(PATIENTS)

    assert (listed.status_code, retrieved.status_code, created.status_code, patched.status_code) == (200, 200, 201, 200)
    assert fresh.json()["name"] == "Patched"
    assert listed_again.json()["count"] == 2
    # The first cache call found Redis dead; every later one skipped it (the circuit breaker) instead of
    # trying again: writes do not touch Redis, and the 4 reads made 4 GETs and 4 SETs.
    breaker = _breakers["127.0.0.1:1"]
    assert (breaker.state, breaker.failures, breaker.skipped) == (CircuitBreaker.OPEN, 1, 7)
    reset_circuit_breakers()


@pytest.fixture
def real_redis():
    """Real Redis (db 15) for one test, under a key prefix of its own; its keys are removed afterwards."""
    url = require_service("redis")
    prefix = f"clinrec-test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(url)
    with override_settings(CACHES={"default": redis_cache(url, key_prefix=prefix, timeout=300)}):
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
    # Redis holds only data: the version tokens live in the database, where no state of Redis can undo them.
    assert all(":api-read:" in key for key in keys), keys

    Patient.objects.filter(pk="108").update(name="Changed behind the API")
    assert names(viewer_client.get(PATIENTS)) == ["Original"]

    clinician_client.patch(PATIENT, {"name": "Patched"}, format="json")
    assert names(viewer_client.get(PATIENTS)) == ["Patched"]
