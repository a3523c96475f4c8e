"""The patients resource as an integrator uses it: caller-given ids, validation, derived `age` and `bmi`, search."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clinrec.cache import clear_read_cache, token_queries_per_request
from patients.models import Patient
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

PATIENTS = "/api/v1/patients/"


def detail(patient_id: str) -> str:
    return f"{PATIENTS}{patient_id}/"


def years_ago(years: int, *, on: date) -> date:
    """`on` shifted back by whole years; 40-year steps keep Feb 29 valid (both years are leap years)."""
    return on.replace(year=on.year - years)


def new_patient(**overrides) -> dict:
    body = {
        "id": "p-1",
        "name": "Ada Lovelace",
        "birth_date": "1960-03-01",
        "sex": "female",
        "height_cm": 165,
        "weight_kg": 60,
        "chronic_pain": True,
        "email": "ada@example.org",
    }
    body.update(overrides)
    return body


# --- create -------------------------------------------------------------------------------------------------


def test_create_patient_returns_201_with_every_field(clinician_client):
    response = clinician_client.post(PATIENTS, new_patient(), format="json")

    assert response.status_code == 201, response.data
    assert response.data["id"] == "p-1"
    assert response.data["name"] == "Ada Lovelace"
    assert response.data["birth_date"] == "1960-03-01"
    assert response.data["sex"] == "female"
    assert response.data["chronic_pain"] is True
    assert response.data["email"] == "ada@example.org"
    assert {"age", "bmi", "created_at", "updated_at"} <= response.data.keys()
    stored = Patient.objects.get(pk="p-1")
    assert stored.name == "Ada Lovelace"
    assert stored.height_cm == 165


def test_create_patient_with_json_number_id_stores_it_as_string(clinician_client):
    response = clinician_client.post(PATIENTS, new_patient(id=108), format="json")

    assert response.status_code == 201, response.data
    assert response.data["id"] == "108"
    assert Patient.objects.filter(pk="108").exists()
    assert clinician_client.get(detail("108")).data["id"] == "108"


@pytest.mark.parametrize("patient_id", ["por-123", "1.2.840.113619", "A-b.C-9", "x" * 64, "0"])
def test_create_patient_accepts_fhir_ids_with_dots_and_dashes(clinician_client, patient_id):
    response = clinician_client.post(PATIENTS, new_patient(id=patient_id), format="json")

    assert response.status_code == 201, response.data
    assert response.data["id"] == patient_id
    retrieved = clinician_client.get(detail(patient_id))
    assert retrieved.status_code == 200
    assert retrieved.data["id"] == patient_id


@pytest.mark.parametrize(
    "bad_id",
    ["", "x" * 65, "pat_1", "pat/1", "pat 1", " pat1", 1.5, True, False, {"value": "1"}, ["1"], None],
    ids=[
        "empty",
        "65-chars",
        "underscore",
        "slash",
        "space",
        "leading-space",
        "float",
        "true",
        "false",
        "object",
        "list",
        "null",
    ],
)
def test_create_patient_with_malformed_id_is_400_naming_id(clinician_client, bad_id):
    response = clinician_client.post(PATIENTS, new_patient(id=bad_id), format="json")

    assert response.status_code == 400
    assert "id" in response.data
    assert not Patient.objects.exists()


def test_create_patient_without_id_is_400_naming_id(clinician_client):
    body = new_patient()
    del body["id"]

    response = clinician_client.post(PATIENTS, body, format="json")

    assert response.status_code == 400
    assert "id" in response.data


def test_create_patient_with_duplicate_id_is_refused_and_original_unchanged(clinician_client):
    PatientFactory(id="108", name="Original Name")

    response = clinician_client.post(PATIENTS, new_patient(id="108", name="Impostor"), format="json")

    assert response.status_code in (400, 409)
    assert "id" in response.data or "detail" in response.data
    assert Patient.objects.get(pk="108").name == "Original Name"
    assert Patient.objects.count() == 1


def test_create_patient_with_duplicate_numeric_id_is_refused(clinician_client):
    PatientFactory(id="108", name="Original Name")

    response = clinician_client.post(PATIENTS, new_patient(id=108), format="json")

    assert response.status_code in (400, 409)
    assert Patient.objects.get(pk="108").name == "Original Name"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("height_cm", "tall"),
        ("weight_kg", "heavy"),
        ("chronic_pain", "maybe"),
        ("sex", "martian"),
        ("weight_kg", -70),
        ("weight_kg", 0),
        ("height_cm", -1),
        ("height_cm", 0),
        ("bmi", -3),
        ("birth_date", "15/06/1980"),
        ("birth_date", "1980-13-01"),
        ("birth_date", "yesterday"),
        ("email", "not-an-email"),
        ("name", ""),
    ],
)
def test_create_patient_with_invalid_field_is_400_naming_it(clinician_client, field, value):
    response = clinician_client.post(PATIENTS, new_patient(**{field: value}), format="json")

    assert response.status_code == 400
    assert field in response.data, response.data
    assert not Patient.objects.exists()


def test_create_patient_born_tomorrow_is_400_naming_birth_date(clinician_client):
    tomorrow = date.today() + timedelta(days=1)

    response = clinician_client.post(PATIENTS, new_patient(birth_date=tomorrow.isoformat()), format="json")

    assert response.status_code == 400
    assert "birth_date" in response.data


def test_create_patient_born_today_is_accepted_with_age_zero(clinician_client):
    response = clinician_client.post(PATIENTS, new_patient(birth_date=date.today().isoformat()), format="json")

    assert response.status_code == 201, response.data
    assert response.data["age"] == 0


def test_create_patient_without_name_is_400_naming_name(clinician_client):
    body = new_patient()
    del body["name"]

    response = clinician_client.post(PATIENTS, body, format="json")

    assert response.status_code == 400
    assert "name" in response.data


def test_create_patient_with_only_id_and_name_uses_defaults(clinician_client):
    response = clinician_client.post(PATIENTS, {"id": "min", "name": "Minimal"}, format="json")

    assert response.status_code == 201, response.data
    assert response.data["sex"] == "unknown"
    assert response.data["chronic_pain"] is False
    assert response.data["birth_date"] is None
    assert response.data["age"] is None
    assert response.data["bmi"] is None
    assert response.data["email"] == ""


# --- read ---------------------------------------------------------------------------------------------------


def test_retrieve_patient(viewer_client):
    patient = PatientFactory(id="108", name="Grace Hopper", height_cm=160, weight_kg=50, bmi=19.5)

    response = viewer_client.get(detail("108"))

    assert response.status_code == 200
    assert response.data["id"] == "108"
    assert response.data["name"] == "Grace Hopper"
    assert response.data["birth_date"] == patient.birth_date.isoformat()
    assert response.data["bmi"] == 19.5


def test_retrieve_unknown_patient_is_404(viewer_client):
    PatientFactory(id="108")

    assert viewer_client.get(detail("109")).status_code == 404


def test_list_patients_is_ordered_by_id(viewer_client):
    for patient_id in ["b", "c", "a"]:
        PatientFactory(id=patient_id)

    response = viewer_client.get(PATIENTS)

    assert response.status_code == 200
    assert response.data["count"] == 3
    assert [row["id"] for row in response.data["results"]] == ["a", "b", "c"]


def test_search_patients_matches_name_case_insensitively(viewer_client):
    PatientFactory(id="1", name="Margaret Hamilton")
    PatientFactory(id="2", name="Alan Turing")
    PatientFactory(id="3", name="Hamilton Smith")

    response = viewer_client.get(PATIENTS, {"search": "hamilton"})

    assert response.status_code == 200
    assert sorted(row["id"] for row in response.data["results"]) == ["1", "3"]


def test_search_patients_matches_id(viewer_client):
    PatientFactory(id="por-123", name="Alice")
    PatientFactory(id="por-999", name="Bob")
    PatientFactory(id="other", name="Carol")

    response = viewer_client.get(PATIENTS, {"search": "por-12"})

    assert [row["id"] for row in response.data["results"]] == ["por-123"]


def test_search_patients_without_match_is_empty_list(viewer_client):
    PatientFactory(name="Alice")

    response = viewer_client.get(PATIENTS, {"search": "zzz"})

    assert response.status_code == 200
    assert response.data["count"] == 0
    assert response.data["results"] == []


# --- age ----------------------------------------------------------------------------------------------------


def test_age_counts_whole_years_when_birthday_is_today(viewer_client):
    today = date.today()
    PatientFactory(id="b-today", birth_date=years_ago(40, on=today))

    assert viewer_client.get(detail("b-today")).data["age"] == 40


def test_age_does_not_count_the_year_before_a_birthday_tomorrow(viewer_client):
    tomorrow = date.today() + timedelta(days=1)
    PatientFactory(id="b-tomorrow", birth_date=years_ago(40, on=tomorrow))

    assert viewer_client.get(detail("b-tomorrow")).data["age"] == 39


def test_age_counts_the_year_after_a_birthday_yesterday(viewer_client):
    yesterday = date.today() - timedelta(days=1)
    PatientFactory(id="b-yesterday", birth_date=years_ago(40, on=yesterday))

    assert viewer_client.get(detail("b-yesterday")).data["age"] == 40


def test_age_is_null_without_birth_date(viewer_client):
    PatientFactory(id="no-dob", birth_date=None)

    assert viewer_client.get(detail("no-dob")).data["age"] is None


def test_age_is_read_only(clinician_client):
    birth_date = years_ago(40, on=date.today())
    response = clinician_client.post(PATIENTS, new_patient(birth_date=birth_date.isoformat(), age=3), format="json")

    assert response.status_code == 201, response.data
    assert response.data["age"] == 40


# --- bmi ----------------------------------------------------------------------------------------------------


def test_bmi_is_computed_when_omitted(clinician_client):
    response = clinician_client.post(PATIENTS, new_patient(height_cm=170, weight_kg=95), format="json")

    assert response.status_code == 201, response.data
    assert response.data["bmi"] == 32.9
    assert Patient.objects.get(pk="p-1").bmi == 32.9


def test_bmi_is_computed_when_sent_as_null(clinician_client):
    response = clinician_client.post(PATIENTS, new_patient(height_cm=170, weight_kg=95, bmi=None), format="json")

    assert response.status_code == 201, response.data
    assert response.data["bmi"] == 32.9


def test_bmi_given_by_the_caller_is_kept(clinician_client):
    response = clinician_client.post(PATIENTS, new_patient(height_cm=170, weight_kg=95, bmi=31.0), format="json")

    assert response.status_code == 201, response.data
    assert response.data["bmi"] == 31.0


def test_bmi_is_null_when_only_one_measurement_is_known(clinician_client):
    body = new_patient(height_cm=170)
    del body["weight_kg"]

    response = clinician_client.post(PATIENTS, body, format="json")

    assert response.status_code == 201, response.data
    assert response.data["bmi"] is None


def test_patch_weight_recomputes_bmi(clinician_client):
    PatientFactory(id="108", height_cm=170, weight_kg=70, bmi=24.2)

    response = clinician_client.patch(detail("108"), {"weight_kg": 95}, format="json")

    assert response.status_code == 200, response.data
    assert response.data["bmi"] == 32.9
    assert Patient.objects.get(pk="108").bmi == 32.9


def test_patch_height_recomputes_bmi(clinician_client):
    PatientFactory(id="108", height_cm=190, weight_kg=95, bmi=26.3)

    response = clinician_client.patch(detail("108"), {"height_cm": 170}, format="json")

    assert response.status_code == 200, response.data
    assert response.data["bmi"] == 32.9


def test_patch_with_explicit_bmi_keeps_it(clinician_client):
    PatientFactory(id="108", height_cm=170, weight_kg=70, bmi=24.2)

    response = clinician_client.patch(detail("108"), {"weight_kg": 95, "bmi": 33.3}, format="json")

    assert response.status_code == 200, response.data
    assert response.data["bmi"] == 33.3


def test_patch_of_other_fields_leaves_a_given_bmi_alone(clinician_client):
    # A BMI the hospital sent (e.g. measured differently) must not silently change on an unrelated edit.
    PatientFactory(id="108", height_cm=170, weight_kg=95, bmi=31.0)

    response = clinician_client.patch(detail("108"), {"name": "Renamed"}, format="json")

    assert response.status_code == 200, response.data
    assert response.data["bmi"] == 31.0


def test_patch_of_one_measurement_does_not_erase_bmi_when_the_other_is_unknown(clinician_client):
    PatientFactory(id="108", height_cm=None, weight_kg=80, bmi=27.0)

    response = clinician_client.patch(detail("108"), {"weight_kg": 82}, format="json")

    assert response.status_code == 200, response.data
    assert response.data["bmi"] == 27.0
    assert Patient.objects.get(pk="108").bmi == 27.0


# --- update -------------------------------------------------------------------------------------------------


def test_put_replaces_patient(clinician_client):
    PatientFactory(id="108", name="Old", sex="female", chronic_pain=False)
    body = new_patient(id="108", name="New", sex="male", chronic_pain=True, height_cm=170, weight_kg=95)

    response = clinician_client.put(detail("108"), body, format="json")

    assert response.status_code == 200, response.data
    stored = Patient.objects.get(pk="108")
    assert (stored.name, stored.sex, stored.chronic_pain, stored.bmi) == ("New", "male", True, 32.9)
    assert response.data["name"] == "New"


def test_put_without_id_in_body_uses_the_path(clinician_client):
    PatientFactory(id="108", name="Old")
    body = new_patient(name="New")
    del body["id"]

    response = clinician_client.put(detail("108"), body, format="json")

    assert response.status_code == 200, response.data
    assert response.data["id"] == "108"
    assert Patient.objects.get(pk="108").name == "New"


def test_put_with_numeric_body_id_matching_the_path_is_accepted(clinician_client):
    PatientFactory(id="108", name="Old")

    response = clinician_client.put(detail("108"), new_patient(id=108, name="New"), format="json")

    assert response.status_code == 200, response.data
    assert Patient.objects.get(pk="108").name == "New"


def test_put_with_missing_required_field_is_400(clinician_client):
    PatientFactory(id="108", name="Old")

    response = clinician_client.put(detail("108"), {"id": "108", "sex": "male"}, format="json")

    assert response.status_code == 400
    assert "name" in response.data
    assert Patient.objects.get(pk="108").name == "Old"


def test_patch_updates_only_the_given_fields(clinician_client):
    PatientFactory(id="108", name="Old", email="old@example.org", chronic_pain=False)

    response = clinician_client.patch(detail("108"), {"chronic_pain": True}, format="json")

    assert response.status_code == 200, response.data
    stored = Patient.objects.get(pk="108")
    assert stored.chronic_pain is True
    assert (stored.name, stored.email) == ("Old", "old@example.org")


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_with_body_id_other_than_path_is_400_and_changes_nothing(clinician_client, method):
    PatientFactory(id="108", name="Old")

    response = getattr(clinician_client, method)(detail("108"), new_patient(id="109", name="New"), format="json")

    assert response.status_code == 400
    assert "id" in response.data
    assert Patient.objects.get(pk="108").name == "Old"
    assert not Patient.objects.filter(pk="109").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("height_cm", "tall"), ("chronic_pain", "maybe"), ("sex", "martian"), ("weight_kg", 0), ("email", "nope")],
)
def test_patch_with_invalid_field_is_400_naming_it_and_changes_nothing(clinician_client, field, value):
    patient = PatientFactory(id="108")

    response = clinician_client.patch(detail("108"), {field: value}, format="json")

    assert response.status_code == 400
    assert field in response.data
    assert getattr(Patient.objects.get(pk="108"), field) == getattr(patient, field)


def test_patch_future_birth_date_is_400(clinician_client):
    PatientFactory(id="108")
    tomorrow = date.today() + timedelta(days=1)

    response = clinician_client.patch(detail("108"), {"birth_date": tomorrow.isoformat()}, format="json")

    assert response.status_code == 400
    assert "birth_date" in response.data


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_write_to_unknown_patient_is_404(admin_client_jwt, method):
    response = getattr(admin_client_jwt, method)(detail("ghost"), new_patient(id="ghost"), format="json")

    assert response.status_code == 404
    assert not Patient.objects.exists()


# --- read-only timestamps -----------------------------------------------------------------------------------


def test_created_at_and_updated_at_cannot_be_set_on_create(clinician_client):
    before = timezone.now()
    body = new_patient(created_at="2000-01-01T00:00:00Z", updated_at="2000-01-01T00:00:00Z")

    response = clinician_client.post(PATIENTS, body, format="json")

    assert response.status_code == 201, response.data
    assert parse_datetime(response.data["created_at"]) >= before
    assert parse_datetime(response.data["updated_at"]) >= before


def test_created_at_cannot_be_changed_and_updated_at_moves_on_patch(clinician_client):
    patient = PatientFactory(id="108")
    a_day_ago = timezone.now() - timedelta(days=1)
    Patient.objects.filter(pk="108").update(updated_at=a_day_ago)
    original_created_at = patient.created_at

    response = clinician_client.patch(
        detail("108"),
        {"name": "New", "created_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z"},
        format="json",
    )

    assert response.status_code == 200, response.data
    stored = Patient.objects.get(pk="108")
    assert stored.name == "New"
    assert stored.created_at == original_created_at
    assert parse_datetime(response.data["created_at"]) == original_created_at
    assert stored.updated_at > a_day_ago + timedelta(hours=23)
    assert parse_datetime(response.data["updated_at"]) == stored.updated_at


# --- delete -------------------------------------------------------------------------------------------------


def test_delete_patient_without_links_is_204(admin_client_jwt):
    PatientFactory(id="108")

    response = admin_client_jwt.delete(detail("108"))

    assert response.status_code == 204
    assert not Patient.objects.filter(pk="108").exists()
    assert admin_client_jwt.get(detail("108")).status_code == 404


def test_clinician_cannot_delete_patient(clinician_client):
    PatientFactory(id="108")

    assert clinician_client.delete(detail("108")).status_code == 403
    assert Patient.objects.filter(pk="108").exists()


def test_viewer_cannot_create_patient(viewer_client):
    assert viewer_client.post(PATIENTS, new_patient(), format="json").status_code == 403
    assert not Patient.objects.exists()


# --- query budget -------------------------------------------------------------------------------------------

# A cold (uncached) page of the patient list, the caller's role snapshot already taken (security/authentication.py):
# SAVEPOINT and RELEASE (a read inside the test's transaction takes a savepoint; in production it runs outside
# any), COUNT(*) and the page. The version tokens come from the connection's memo (clinrec/cache.py).
PATIENT_LIST_QUERIES = 4


def test_patient_list_costs_the_same_queries_for_5_and_200_rows(viewer_client, django_assert_max_num_queries):
    viewer_client.get("/api/v1/")  # the viewer's role snapshot: taken once, not per request
    counts = {}
    for rows in (5, 200):
        Patient.objects.all().delete()
        Patient.objects.bulk_create([PatientFactory.build(id=f"q-{n:03d}") for n in range(rows)])
        clear_read_cache()  # bulk_create sends no signals; start from a cold cache

        with django_assert_max_num_queries(PATIENT_LIST_QUERIES + token_queries_per_request()) as captured:
            response = viewer_client.get(PATIENTS, {"limit": 500})

        assert response.status_code == 200
        assert len(response.data["results"]) == rows
        counts[rows] = len(captured.captured_queries)

    expected = PATIENT_LIST_QUERIES + token_queries_per_request()
    assert counts == {5: expected, 200: expected}
