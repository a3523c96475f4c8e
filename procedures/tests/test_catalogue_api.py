"""The procedure catalogue (`/api/v1/procedures/`): CRUD by administrators, filters, validation, protected deletes."""

from __future__ import annotations

import pytest

from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure, Procedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory

pytestmark = pytest.mark.django_db

PROCEDURES = "/api/v1/procedures/"


def detail(procedure_id: str) -> str:
    return f"{PROCEDURES}{procedure_id}/"


def new_procedure(**overrides) -> dict:
    body = {
        "id": "hip-1",
        "name": "Total hip replacement",
        "department": "orthopaedics",
        "is_surgery": True,
        "code": "52734007",
        "description": "Replacement of the hip joint by a prosthesis.",
    }
    body.update(overrides)
    return body


# --- create -------------------------------------------------------------------------------------------------


def test_admin_creates_procedure(admin_client_jwt):
    response = admin_client_jwt.post(PROCEDURES, new_procedure(), format="json")

    assert response.status_code == 201, response.data
    assert response.data == new_procedure()
    stored = Procedure.objects.get(pk="hip-1")
    assert (stored.name, stored.department, stored.is_surgery, stored.code) == (
        "Total hip replacement",
        "orthopaedics",
        True,
        "52734007",
    )


def test_create_procedure_with_json_number_id_stores_it_as_string(admin_client_jwt):
    response = admin_client_jwt.post(PROCEDURES, new_procedure(id=4711), format="json")

    assert response.status_code == 201, response.data
    assert response.data["id"] == "4711"
    assert admin_client_jwt.get(detail("4711")).status_code == 200


def test_create_procedure_with_only_required_fields_uses_defaults(admin_client_jwt):
    response = admin_client_jwt.post(
        PROCEDURES, {"id": "x-ray.1", "name": "Chest X-ray", "department": "radiology"}, format="json"
    )

    assert response.status_code == 201, response.data
    assert response.data["is_surgery"] is False
    assert response.data["code"] == ""
    assert response.data["description"] == ""


def test_clinician_cannot_create_procedure(clinician_client):
    assert clinician_client.post(PROCEDURES, new_procedure(), format="json").status_code == 403
    assert not Procedure.objects.exists()


def test_create_procedure_with_duplicate_id_is_refused_and_original_unchanged(admin_client_jwt):
    ProcedureFactory(id="hip-1", name="Original")

    response = admin_client_jwt.post(PROCEDURES, new_procedure(id="hip-1", name="Impostor"), format="json")

    assert response.status_code in (400, 409)
    assert Procedure.objects.get(pk="hip-1").name == "Original"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", ""),
        ("id", "hip_1"),
        ("id", "hip/1"),
        ("id", "x" * 65),
        ("id", 1.5),
        ("id", True),
        ("id", {"id": "hip-1"}),
        ("name", ""),
        ("department", ""),
        ("department", "   "),
        ("is_surgery", "maybe"),
        ("code", "x" * 65),
    ],
)
def test_create_procedure_with_invalid_field_is_400_naming_it(admin_client_jwt, field, value):
    response = admin_client_jwt.post(PROCEDURES, new_procedure(**{field: value}), format="json")

    assert response.status_code == 400
    assert field in response.data, response.data
    assert not Procedure.objects.exists()


@pytest.mark.parametrize("field", ["id", "name", "department"])
def test_create_procedure_without_required_field_is_400_naming_it(admin_client_jwt, field):
    body = new_procedure()
    del body[field]

    response = admin_client_jwt.post(PROCEDURES, body, format="json")

    assert response.status_code == 400
    assert field in response.data


def test_department_is_stored_without_surrounding_spaces(admin_client_jwt):
    response = admin_client_jwt.post(PROCEDURES, new_procedure(department="  orthopaedics "), format="json")

    assert response.status_code == 201, response.data
    assert Procedure.objects.get(pk="hip-1").department == "orthopaedics"


# --- read and filters ---------------------------------------------------------------------------------------


def test_retrieve_procedure(viewer_client):
    ProcedureFactory(id="knee.2", name="Knee arthroscopy", department="orthopaedics", is_surgery=True)

    response = viewer_client.get(detail("knee.2"))

    assert response.status_code == 200
    assert response.data["name"] == "Knee arthroscopy"
    assert response.data["is_surgery"] is True


def test_retrieve_unknown_procedure_is_404(viewer_client):
    assert viewer_client.get(detail("nope")).status_code == 404


def test_list_procedures(viewer_client):
    ProcedureFactory(id="b")
    ProcedureFactory(id="a")

    response = viewer_client.get(PROCEDURES)

    assert response.status_code == 200
    assert response.data["count"] == 2
    assert [row["id"] for row in response.data["results"]] == ["a", "b"]


def test_filter_procedures_by_department(viewer_client):
    ProcedureFactory(id="hip", department="orthopaedics")
    ProcedureFactory(id="bypass", department="cardiology")
    ProcedureFactory(id="knee", department="orthopaedics")

    response = viewer_client.get(PROCEDURES, {"department": "orthopaedics"})

    assert response.status_code == 200
    assert [row["id"] for row in response.data["results"]] == ["hip", "knee"]


@pytest.mark.parametrize(("value", "expected"), [("true", ["hip"]), ("false", ["mri"])])
def test_filter_procedures_by_is_surgery(viewer_client, value, expected):
    ProcedureFactory(id="hip", is_surgery=True)
    ProcedureFactory(id="mri", is_surgery=False)

    response = viewer_client.get(PROCEDURES, {"is_surgery": value})

    assert response.status_code == 200
    assert [row["id"] for row in response.data["results"]] == expected


def test_filters_combine(viewer_client):
    ProcedureFactory(id="hip", department="orthopaedics", is_surgery=True)
    ProcedureFactory(id="cast", department="orthopaedics", is_surgery=False)
    ProcedureFactory(id="bypass", department="cardiology", is_surgery=True)

    response = viewer_client.get(PROCEDURES, {"department": "orthopaedics", "is_surgery": "true"})

    assert [row["id"] for row in response.data["results"]] == ["hip"]


# --- update -------------------------------------------------------------------------------------------------


def test_put_replaces_procedure(admin_client_jwt):
    ProcedureFactory(id="hip-1", name="Old", department="surgery", is_surgery=False)

    response = admin_client_jwt.put(detail("hip-1"), new_procedure(), format="json")

    assert response.status_code == 200, response.data
    stored = Procedure.objects.get(pk="hip-1")
    assert (stored.name, stored.department, stored.is_surgery) == ("Total hip replacement", "orthopaedics", True)


def test_patch_updates_only_the_given_fields(admin_client_jwt):
    ProcedureFactory(id="hip-1", name="Hip", department="orthopaedics", is_surgery=True)

    response = admin_client_jwt.patch(detail("hip-1"), {"code": "52734007"}, format="json")

    assert response.status_code == 200, response.data
    stored = Procedure.objects.get(pk="hip-1")
    assert (stored.name, stored.code, stored.is_surgery) == ("Hip", "52734007", True)


@pytest.mark.parametrize("method", ["put", "patch"])
def test_update_with_body_id_other_than_path_is_400_and_changes_nothing(admin_client_jwt, method):
    ProcedureFactory(id="hip-1", name="Old")

    response = getattr(admin_client_jwt, method)(detail("hip-1"), new_procedure(id="hip-2", name="New"), format="json")

    assert response.status_code == 400
    assert "id" in response.data
    assert Procedure.objects.get(pk="hip-1").name == "Old"
    assert not Procedure.objects.filter(pk="hip-2").exists()


def test_patch_with_blank_department_is_400(admin_client_jwt):
    ProcedureFactory(id="hip-1", department="orthopaedics")

    response = admin_client_jwt.patch(detail("hip-1"), {"department": " "}, format="json")

    assert response.status_code == 400
    assert "department" in response.data
    assert Procedure.objects.get(pk="hip-1").department == "orthopaedics"


def test_clinician_cannot_change_procedure(clinician_client):
    ProcedureFactory(id="hip-1", name="Old")

    assert clinician_client.patch(detail("hip-1"), {"name": "New"}, format="json").status_code == 403
    assert Procedure.objects.get(pk="hip-1").name == "Old"


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_write_to_unknown_procedure_is_404(admin_client_jwt, method):
    response = getattr(admin_client_jwt, method)(detail("ghost"), new_procedure(id="ghost"), format="json")

    assert response.status_code == 404
    assert not Procedure.objects.exists()


# --- delete -------------------------------------------------------------------------------------------------


def test_delete_unused_procedure_is_204(admin_client_jwt):
    ProcedureFactory(id="hip-1")

    response = admin_client_jwt.delete(detail("hip-1"))

    assert response.status_code == 204
    assert not Procedure.objects.exists()


def test_delete_procedure_used_by_patient_procedures_is_409_and_deletes_nothing(admin_client_jwt):
    procedure = ProcedureFactory(id="hip-1")
    used = PatientProcedureFactory.create_batch(2, procedure=procedure)

    response = admin_client_jwt.delete(detail("hip-1"))

    assert response.status_code == 409
    assert "hip-1" in response.data["detail"]
    assert response.data["blocked_by"] == {"patient procedures": {"count": 2, "ids": sorted(link.pk for link in used)}}
    assert Procedure.objects.filter(pk="hip-1").exists()
    assert PatientProcedure.objects.count() == 2


def test_clinician_cannot_delete_procedure(clinician_client):
    ProcedureFactory(id="hip-1")

    assert clinician_client.delete(detail("hip-1")).status_code == 403
    assert Procedure.objects.filter(pk="hip-1").exists()


def test_blocked_delete_lists_the_lowest_20_blocker_ids_in_numeric_order(admin_client_jwt):
    procedure = ProcedureFactory(id="hip-1")
    patient = PatientFactory()
    PatientProcedure.objects.bulk_create(
        PatientProcedureFactory.build(id=link_id, patient=patient, procedure=procedure) for link_id in range(1, 26)
    )

    response = admin_client_jwt.delete(detail("hip-1"))

    assert response.status_code == 409
    assert response.data["blocked_by"] == {"patient procedures": {"count": 25, "ids": list(range(1, 21))}}


def test_an_unknown_is_surgery_value_is_a_400_not_an_ignored_filter(viewer_client):
    ProcedureFactory(is_surgery=True)
    response = viewer_client.get("/api/v1/procedures/?is_surgery=maybe")
    assert response.status_code == 400
    assert "is_surgery" in response.json()


def test_is_surgery_and_department_filters_accept_any_case(viewer_client):
    surgery = ProcedureFactory(is_surgery=True, department="Orthopaedics")
    ProcedureFactory(is_surgery=False, department="orthopaedics")
    ProcedureFactory(is_surgery=True, department="cardiology")
    response = viewer_client.get("/api/v1/procedures/?is_surgery=False")
    assert response.status_code == 200
    assert all(item["is_surgery"] is False for item in response.json()["results"])
    response = viewer_client.get("/api/v1/procedures/?is_surgery=true&department=ORTHOPAEDICS")
    assert [item["id"] for item in response.json()["results"]] == [surgery.id]
