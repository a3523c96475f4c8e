"""Patient procedures (`/api/v1/patient-procedures/`): the history links, filters, `?expand=` and protected deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils.dateparse import parse_datetime

from clinrec.cache import clear_read_cache, token_queries_per_request
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure, Procedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation
from recommendations.tests.factories import PatientRecommendationFactory

pytestmark = pytest.mark.django_db

LINKS = "/api/v1/patient-procedures/"


def detail(link_id: int) -> str:
    return f"{LINKS}{link_id}/"


@pytest.fixture
def patient():
    return PatientFactory(id="108", name="Grace Hopper")


@pytest.fixture
def procedure():
    return ProcedureFactory(id="hip-1", name="Total hip replacement", department="orthopaedics", is_surgery=True)


def new_link(**overrides) -> dict:
    body = {"patient": "108", "procedure": "hip-1", "performed_at": "2025-03-01T09:30:00Z", "report": "Uneventful."}
    body.update(overrides)
    return body


# --- create -------------------------------------------------------------------------------------------------


def test_clinician_records_patient_procedure_with_integer_id(clinician_client, patient, procedure):
    response = clinician_client.post(LINKS, new_link(), format="json")

    assert response.status_code == 201, response.data
    assert isinstance(response.data["id"], int)
    assert response.data["patient"] == "108"
    assert response.data["procedure"] == "hip-1"
    assert parse_datetime(response.data["performed_at"]) == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert response.data["report"] == "Uneventful."
    link = PatientProcedure.objects.get(pk=response.data["id"])
    assert (link.patient_id, link.procedure_id) == ("108", "hip-1")


def test_performed_at_with_offset_is_stored_as_the_same_instant(clinician_client, patient, procedure):
    response = clinician_client.post(LINKS, new_link(performed_at="2025-03-01T11:30:00+02:00"), format="json")

    assert response.status_code == 201, response.data
    assert PatientProcedure.objects.get().performed_at == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_ids_given_as_json_numbers_are_looked_up_as_strings(clinician_client):
    PatientFactory(id="108")
    ProcedureFactory(id="4711")

    response = clinician_client.post(LINKS, new_link(patient=108, procedure=4711), format="json")

    assert response.status_code == 201, response.data
    assert (response.data["patient"], response.data["procedure"]) == ("108", "4711")


def test_read_only_id_in_body_is_ignored_on_create(clinician_client, patient, procedure):
    existing = PatientProcedureFactory(patient=patient, procedure=procedure)

    response = clinician_client.post(LINKS, new_link(id=existing.pk), format="json")

    assert response.status_code == 201, response.data
    assert response.data["id"] != existing.pk
    assert PatientProcedure.objects.count() == 2


@pytest.mark.parametrize("field", ["patient", "procedure"])
def test_unknown_reference_is_400_naming_the_field(clinician_client, patient, procedure, field):
    response = clinician_client.post(LINKS, new_link(**{field: "ghost"}), format="json")

    assert response.status_code == 400
    assert field in response.data
    assert not PatientProcedure.objects.exists()


@pytest.mark.parametrize("field", ["patient", "procedure", "performed_at"])
def test_missing_required_field_is_400_naming_it(clinician_client, patient, procedure, field):
    body = new_link()
    del body[field]

    response = clinician_client.post(LINKS, body, format="json")

    assert response.status_code == 400
    assert field in response.data


@pytest.mark.parametrize("performed_at", ["yesterday", "2025-13-01T00:00:00Z", "01/03/2025 09:30", "", None, 12])
def test_bad_performed_at_is_400(clinician_client, patient, procedure, performed_at):
    response = clinician_client.post(LINKS, new_link(performed_at=performed_at), format="json")

    assert response.status_code == 400
    assert "performed_at" in response.data
    assert not PatientProcedure.objects.exists()


def test_viewer_cannot_record_patient_procedure(viewer_client, patient, procedure):
    assert viewer_client.post(LINKS, new_link(), format="json").status_code == 403
    assert not PatientProcedure.objects.exists()


# --- read ---------------------------------------------------------------------------------------------------


def test_retrieve_patient_procedure(viewer_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure, report="Fine.")

    response = viewer_client.get(detail(link.pk))

    assert response.status_code == 200
    assert response.data == {
        "id": link.pk,
        "patient": "108",
        "procedure": "hip-1",
        "performed_at": response.data["performed_at"],
        "report": "Fine.",
    }
    assert parse_datetime(response.data["performed_at"]) == link.performed_at


@pytest.mark.parametrize("link_id", ["999999", "abc"])
def test_retrieve_unknown_patient_procedure_is_404(viewer_client, link_id):
    assert viewer_client.get(f"{LINKS}{link_id}/").status_code == 404


def test_list_is_most_recent_first(viewer_client, patient, procedure):
    now = datetime.now(tz=UTC)
    old = PatientProcedureFactory(patient=patient, procedure=procedure, performed_at=now - timedelta(days=30))
    new = PatientProcedureFactory(patient=patient, procedure=procedure, performed_at=now - timedelta(days=1))

    response = viewer_client.get(LINKS)

    assert response.status_code == 200
    assert [row["id"] for row in response.data["results"]] == [new.pk, old.pk]


def test_filter_by_patient(viewer_client, procedure):
    mine = PatientProcedureFactory(patient=PatientFactory(id="108"), procedure=procedure)
    PatientProcedureFactory(patient=PatientFactory(id="109"), procedure=procedure)

    response = viewer_client.get(LINKS, {"patient": "108"})

    assert [row["id"] for row in response.data["results"]] == [mine.pk]


def test_filter_by_procedure(viewer_client, patient):
    hip = PatientProcedureFactory(patient=patient, procedure=ProcedureFactory(id="hip"))
    PatientProcedureFactory(patient=patient, procedure=ProcedureFactory(id="knee"))

    response = viewer_client.get(LINKS, {"procedure": "hip"})

    assert [row["id"] for row in response.data["results"]] == [hip.pk]


def test_filters_by_patient_and_procedure_combine(viewer_client):
    hip, knee = ProcedureFactory(id="hip"), ProcedureFactory(id="knee")
    grace, alan = PatientFactory(id="108"), PatientFactory(id="109")
    wanted = PatientProcedureFactory(patient=grace, procedure=hip)
    PatientProcedureFactory(patient=grace, procedure=knee)
    PatientProcedureFactory(patient=alan, procedure=hip)

    response = viewer_client.get(LINKS, {"patient": "108", "procedure": "hip"})

    assert response.data["count"] == 1
    assert [row["id"] for row in response.data["results"]] == [wanted.pk]


def test_filter_by_unknown_patient_is_empty(viewer_client, patient, procedure):
    PatientProcedureFactory(patient=patient, procedure=procedure)

    response = viewer_client.get(LINKS, {"patient": "ghost"})

    assert response.status_code == 200
    assert response.data["count"] == 0


# --- expand -------------------------------------------------------------------------------------------------


def test_expand_patient_and_procedure_nests_both_objects_in_list(viewer_client, patient, procedure):
    PatientProcedureFactory(patient=patient, procedure=procedure)

    response = viewer_client.get(LINKS, {"expand": "patient,procedure"})

    assert response.status_code == 200
    row = response.data["results"][0]
    assert row["patient"]["id"] == "108"
    assert row["patient"]["name"] == "Grace Hopper"
    assert "age" in row["patient"]
    assert row["procedure"] == {
        "id": "hip-1",
        "name": "Total hip replacement",
        "department": "orthopaedics",
        "is_surgery": True,
        "code": "",
        "description": "",
    }


def test_expand_one_relation_leaves_the_other_as_id(viewer_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    response = viewer_client.get(detail(link.pk), {"expand": "procedure"})

    assert response.status_code == 200
    assert response.data["patient"] == "108"
    assert response.data["procedure"]["id"] == "hip-1"


def test_expand_tolerates_spaces_between_names(viewer_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    response = viewer_client.get(detail(link.pk), {"expand": " patient , procedure "})

    assert response.status_code == 200
    assert response.data["patient"]["id"] == "108"
    assert response.data["procedure"]["id"] == "hip-1"


def test_without_expand_references_are_ids(viewer_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    response = viewer_client.get(detail(link.pk))

    assert (response.data["patient"], response.data["procedure"]) == ("108", "hip-1")


@pytest.mark.parametrize("expand", ["recommendation", "patient,owner", "PATIENT"])
def test_unknown_expand_is_400_naming_expand(viewer_client, patient, procedure, expand):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    list_response = viewer_client.get(LINKS, {"expand": expand})
    detail_response = viewer_client.get(detail(link.pk), {"expand": expand})

    assert list_response.status_code == 400
    assert "expand" in list_response.data
    assert detail_response.status_code == 400
    assert "expand" in detail_response.data


# --- update and delete --------------------------------------------------------------------------------------


def test_put_replaces_patient_procedure(clinician_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure, report="Old")
    other = ProcedureFactory(id="knee")

    response = clinician_client.put(
        detail(link.pk), new_link(procedure="knee", performed_at="2025-01-02T03:04:05Z", report="New"), format="json"
    )

    assert response.status_code == 200, response.data
    link.refresh_from_db()
    assert (link.procedure, link.report) == (other, "New")
    assert link.performed_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_patch_report(clinician_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure, report="Old")

    response = clinician_client.patch(detail(link.pk), {"report": "Wound healed."}, format="json")

    assert response.status_code == 200, response.data
    link.refresh_from_db()
    assert link.report == "Wound healed."
    assert link.patient_id == "108"


def test_patch_to_unknown_patient_is_400_and_changes_nothing(clinician_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    response = clinician_client.patch(detail(link.pk), {"patient": "ghost"}, format="json")

    assert response.status_code == 400
    assert "patient" in response.data
    link.refresh_from_db()
    assert link.patient_id == "108"


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_with_body_id_other_than_path_is_400(clinician_client, patient, procedure, method):
    link = PatientProcedureFactory(patient=patient, procedure=procedure, report="Old")

    response = getattr(clinician_client, method)(detail(link.pk), new_link(id=link.pk + 1, report="New"), format="json")

    assert response.status_code == 400
    assert "id" in response.data
    link.refresh_from_db()
    assert link.report == "Old"


def test_update_with_body_id_equal_to_path_is_accepted(clinician_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure, report="Old")

    response = clinician_client.patch(detail(link.pk), {"id": link.pk, "report": "New"}, format="json")

    assert response.status_code == 200, response.data
    link.refresh_from_db()
    assert link.report == "New"


def test_admin_deletes_patient_procedure(admin_client_jwt, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    response = admin_client_jwt.delete(detail(link.pk))

    assert response.status_code == 204
    assert not PatientProcedure.objects.exists()
    assert Patient.objects.filter(pk="108").exists()


def test_clinician_cannot_delete_patient_procedure(clinician_client, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)

    assert clinician_client.delete(detail(link.pk)).status_code == 403
    assert PatientProcedure.objects.filter(pk=link.pk).exists()


# --- patients that links still point at ---------------------------------------------------------------------


def test_delete_patient_with_history_is_409(admin_client_jwt, patient, procedure):
    history = PatientProcedureFactory.create_batch(3, patient=patient, procedure=procedure)

    response = admin_client_jwt.delete("/api/v1/patients/108/")

    assert response.status_code == 409
    assert "108" in response.data["detail"]
    assert response.data["blocked_by"] == {
        "patient procedures": {"count": 3, "ids": sorted(link.pk for link in history)}
    }
    assert Patient.objects.filter(pk="108").exists()
    assert PatientProcedure.objects.count() == 3
    assert admin_client_jwt.get("/api/v1/patients/108/").status_code == 200


def test_delete_patient_with_recommendation_is_409(admin_client_jwt, patient):
    recommendation = PatientRecommendationFactory(patient=patient)

    response = admin_client_jwt.delete("/api/v1/patients/108/")

    assert response.status_code == 409
    assert response.data["blocked_by"] == {"patient recommendations": {"count": 1, "ids": [recommendation.pk]}}
    assert Patient.objects.filter(pk="108").exists()
    assert PatientRecommendation.objects.filter(pk=recommendation.pk).exists()


def test_delete_patient_with_history_and_recommendation_names_both(admin_client_jwt, patient, procedure):
    PatientProcedureFactory(patient=patient, procedure=procedure)
    PatientRecommendationFactory(patient=patient)

    response = admin_client_jwt.delete("/api/v1/patients/108/")

    assert response.status_code == 409
    assert set(response.data["blocked_by"]) == {"patient procedures", "patient recommendations"}
    assert Patient.objects.filter(pk="108").exists()


def test_delete_patient_after_its_history_is_deleted_succeeds(admin_client_jwt, patient, procedure):
    link = PatientProcedureFactory(patient=patient, procedure=procedure)
    assert admin_client_jwt.delete("/api/v1/patients/108/").status_code == 409

    assert admin_client_jwt.delete(detail(link.pk)).status_code == 204
    response = admin_client_jwt.delete("/api/v1/patients/108/")

    assert response.status_code == 204
    assert not Patient.objects.exists()


# --- query budget -------------------------------------------------------------------------------------------

# A cold (uncached) page with `?expand=patient,procedure`, the caller's role snapshot and the version tokens
# already remembered (security/authentication.py, clinrec/cache.py): SAVEPOINT and RELEASE (a read inside the
# test's transaction), COUNT(*) and one page query joining patients and procedures. No query per row.
EXPANDED_LIST_QUERIES = 4


def make_history(rows: int) -> None:
    """`rows` links, each to a patient and a procedure of its own, so nothing is shared between rows."""
    PatientProcedure.objects.all().delete()
    Patient.objects.all().delete()
    Procedure.objects.all().delete()
    patients = Patient.objects.bulk_create([PatientFactory.build(id=f"q-{n:03d}") for n in range(rows)])
    procedures = Procedure.objects.bulk_create([ProcedureFactory.build(id=f"proc-q-{n:03d}") for n in range(rows)])
    PatientProcedure.objects.bulk_create(
        PatientProcedureFactory.build(patient=patient, procedure=procedure)
        for patient, procedure in zip(patients, procedures, strict=True)
    )
    clear_read_cache()  # bulk_create sends no signals; start from a cold cache


def test_expanded_list_costs_the_same_queries_for_5_and_200_rows(viewer_client, django_assert_max_num_queries):
    viewer_client.get("/api/v1/")  # the viewer's role snapshot and the tokens: taken once, not per request
    counts = {}
    for rows in (5, 200):
        make_history(rows)

        with django_assert_max_num_queries(EXPANDED_LIST_QUERIES + token_queries_per_request()) as captured:
            response = viewer_client.get(LINKS, {"expand": "patient,procedure", "limit": 500})

        assert response.status_code == 200
        assert len(response.data["results"]) == rows
        assert {row["patient"]["id"] for row in response.data["results"]} == {f"q-{n:03d}" for n in range(rows)}
        assert all(isinstance(row["procedure"], dict) for row in response.data["results"])
        counts[rows] = len(captured.captured_queries)

    expected = EXPANDED_LIST_QUERIES + token_queries_per_request()
    assert counts == {5: expected, 200: expected}


def test_expanded_retrieve_is_one_query_for_the_link_and_both_objects(viewer_client, django_assert_num_queries):
    link = PatientProcedureFactory()
    clear_read_cache()

    # SAVEPOINT, the cache's version tokens, the token's user and its 2 permission queries (the first request of
    # this client takes its role snapshot), the link joined with its patient and procedure, RELEASE.
    with django_assert_num_queries(7):
        response = viewer_client.get(detail(link.pk), {"expand": "patient,procedure"})

    assert response.status_code == 200
    assert response.data["patient"]["id"] == link.patient_id
