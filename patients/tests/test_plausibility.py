"""What a clinician expects of patient data beyond types: plausible dates, one-decimal BMI, null as absent."""

from __future__ import annotations

import pytest

from patients.models import Patient
from patients.tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/patients/"


@pytest.mark.parametrize("birth_date", ["1899-12-31", "0001-01-01"])
def test_birth_date_before_1900_is_400_naming_birth_date(clinician_client, birth_date):
    response = clinician_client.post(URL, {"id": "p-1", "name": "Old", "birth_date": birth_date}, format="json")
    assert response.status_code == 400
    assert "birth_date" in response.json()
    assert not Patient.objects.filter(pk="p-1").exists()


def test_a_given_bmi_is_stored_to_one_decimal_as_the_rules_compare_it(clinician_client):
    response = clinician_client.post(URL, {"id": "p-2", "name": "B", "bmi": 30.04}, format="json")
    assert response.status_code == 201
    assert response.json()["bmi"] == 30.0


def test_clearing_height_clears_the_bmi_derived_from_it(clinician_client):
    PatientFactory(id="p-3", height_cm=170.0, weight_kg=107.0, bmi=37.0)
    response = clinician_client.patch(f"{URL}p-3/", {"height_cm": None}, format="json")
    assert response.status_code == 200
    assert (response.json()["height_cm"], response.json()["bmi"]) == (None, None)


def test_null_email_means_no_email(clinician_client):
    response = clinician_client.post(URL, {"id": "p-4", "name": "N", "email": None}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["email"] == ""


@pytest.mark.parametrize("patient_id", [".", ".."])
def test_dot_segments_are_refused_as_ids_since_no_url_can_reach_them(clinician_client, patient_id):
    response = clinician_client.post(URL, {"id": patient_id, "name": "Dot"}, format="json")
    assert response.status_code == 400
    assert "id" in response.json()


def test_ids_with_dots_inside_remain_valid(clinician_client):
    response = clinician_client.post(URL, {"id": "1.2.840", "name": "Oid"}, format="json")
    assert response.status_code == 201
    assert clinician_client.get(f"{URL}1.2.840/").status_code == 200
