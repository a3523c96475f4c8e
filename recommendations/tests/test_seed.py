"""`manage.py seed_db`: the mock hospital loads twice without duplicates and evaluates as the spec's table says.

The boundary patients are checked on their facts as well as on their (empty) outcome, so a drift in the seed
(a patient no longer exactly 65, a surgery moved into the window) fails here rather than passing silently.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from patients.models import Patient
from procedures.models import PatientProcedure, Procedure
from recommendations.models import PatientRecommendation, Recommendation

pytestmark = pytest.mark.django_db

PT = "Physical Therapy"
WM = "Weight Management Program"
REHAB = "Post-Op Rehabilitation Plan"

# The table of the spec, then the rest of recommendations/seed.py's docstring; every other patient gets nothing.
EXPECTED = {
    "108": {PT, REHAB},
    "105": {WM},
    "102": {REHAB},
    "107": {PT},
    "114": {WM},
    "115": {PT, WM},
    "120": {PT},
    "122": {WM},
}


def seed() -> str:
    out = StringIO()
    call_command("seed_db", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "patients": Patient.objects.count(),
        "procedures": Procedure.objects.count(),
        "histories": PatientProcedure.objects.count(),
        "definitions": Recommendation.objects.count(),
    }


def recommended_names(client, patient_id: str) -> set[str]:
    response = client.post(f"/api/v1/patients/{patient_id}/evaluate/")
    assert response.status_code == 200, response.content
    return {item["name"] for item in response.json()["recommendations"]}


def history_of(patient_id: str) -> list[PatientProcedure]:
    return list(PatientProcedure.objects.filter(patient_id=patient_id).select_related("procedure"))


def days_ago(moment) -> float:
    return (timezone.now() - moment) / timedelta(days=1)


@pytest.fixture
def seeded(db):
    seed()


def test_seed_db_loads_a_hospital_of_at_least_20_patients(seeded):
    loaded = counts()

    assert loaded["patients"] >= 20
    assert loaded["procedures"] >= 10
    assert loaded["histories"] >= 10
    assert set(Recommendation.objects.exclude(rule=None).values_list("rule", flat=True)) == {
        "physical_therapy",
        "weight_management",
        "post_op_rehab",
    }


def test_seed_db_twice_creates_no_duplicates(seeded):
    first = counts()

    output = seed()

    assert counts() == first
    assert "Seeded" in output
    duplicated_history = PatientProcedure.objects.values("patient", "procedure").annotate(n=Count("id")).filter(n__gt=1)
    assert list(duplicated_history) == []


def test_seed_db_leaves_recommendations_made_before_in_place(seeded, clinician_client):
    recommended_names(clinician_client, "108")

    seed()

    assert PatientRecommendation.objects.filter(patient_id="108", status="active").count() == 2


def test_seed_db_keeps_a_hospitals_own_definition_of_a_standard_rule(db, clinician_client):
    Recommendation.objects.filter(rule="physical_therapy").delete()
    Recommendation.objects.create(id="pt-ward-7", name="Ward 7 Physiotherapy", rule="physical_therapy")

    seed()

    assert list(Recommendation.objects.filter(rule="physical_therapy").values_list("id", "name")) == [
        ("pt-ward-7", "Ward 7 Physiotherapy")
    ]
    assert recommended_names(clinician_client, "108") == {"Ward 7 Physiotherapy", REHAB}


def test_seeded_hospital_evaluates_as_the_spec_table_says(seeded, clinician_client):
    assert recommended_names(clinician_client, "108") == {PT, REHAB}
    assert recommended_names(clinician_client, "105") == {WM}
    assert recommended_names(clinician_client, "102") == {REHAB}


def test_every_seeded_patient_evaluates_as_the_seed_documents(seeded, clinician_client):
    outcomes = {
        patient_id: recommended_names(clinician_client, patient_id)
        for patient_id in Patient.objects.values_list("id", flat=True)
    }

    assert {patient_id: names for patient_id, names in outcomes.items() if names} == EXPECTED


def test_seeded_hospital_evaluates_the_same_after_a_second_seed(seeded, clinician_client):
    seed()

    assert recommended_names(clinician_client, "108") == {PT, REHAB}
    assert recommended_names(clinician_client, "105") == {WM}
    assert recommended_names(clinician_client, "102") == {REHAB}


# --- boundary patients: their facts sit at the threshold, and they get nothing ----------------------------------


def test_patient_106_is_exactly_65_with_chronic_pain_and_gets_nothing(seeded, clinician_client):
    patient = Patient.objects.get(pk="106")

    assert (patient.age, patient.chronic_pain) == (65, True)
    assert patient.bmi <= 30
    assert history_of("106") == []
    assert recommended_names(clinician_client, "106") == set()


def test_patient_109_has_bmi_exactly_30_and_gets_nothing(seeded, clinician_client):
    patient = Patient.objects.get(pk="109")

    assert patient.bmi == 30.0
    assert patient.age <= 65
    assert recommended_names(clinician_client, "109") == set()


def test_patient_110_had_recent_surgery_outside_orthopaedics_and_gets_nothing(seeded, clinician_client):
    (entry,) = history_of("110")

    assert entry.procedure.is_surgery
    assert entry.procedure.department.lower() != "orthopaedics"
    assert days_ago(entry.performed_at) < 90
    assert recommended_names(clinician_client, "110") == set()


def test_patient_111_had_orthopaedic_surgery_long_before_the_window_and_gets_nothing(seeded, clinician_client):
    (entry,) = history_of("111")

    assert entry.procedure.is_surgery
    assert entry.procedure.department == "orthopaedics"
    assert days_ago(entry.performed_at) > 90
    assert recommended_names(clinician_client, "111") == set()


def test_patient_112_had_orthopaedic_surgery_just_outside_the_window_and_gets_nothing(seeded, clinician_client):
    (entry,) = history_of("112")

    assert entry.procedure.is_surgery
    assert entry.procedure.department == "orthopaedics"
    assert 90 < days_ago(entry.performed_at) < 92
    assert recommended_names(clinician_client, "112") == set()


def test_patient_113_had_a_recent_orthopaedic_consultation_not_surgery_and_gets_nothing(seeded, clinician_client):
    (entry,) = history_of("113")

    assert not entry.procedure.is_surgery
    assert entry.procedure.department == "orthopaedics"
    assert days_ago(entry.performed_at) < 90
    assert recommended_names(clinician_client, "113") == set()


def test_near_threshold_patients_that_do_qualify_sit_just_above_it(seeded):
    assert (Patient.objects.get(pk="107").age, Patient.objects.get(pk="107").chronic_pain) == (66, True)
    assert Patient.objects.get(pk="114").bmi == 30.1
    assert Patient.objects.get(pk="120").bmi == 29.9
