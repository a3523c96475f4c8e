"""The patient admin as the ward uses it: the list (last procedure, age bands), the page's summary, and writes
through the API's services. The app stays independent of recommendations: their part of the page and the list
is added by recommendations/admin.py (tested in recommendations/tests/test_admin_workspace.py)."""

from __future__ import annotations

import ast
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import make_user
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from security.roles import ADMIN, CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db

LIST = "/admin/patients/patient/"


def staff_client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(f"ward-{role}", role, is_staff=True))
    return client


def born_years_ago(years: int, days: int = 10) -> date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - timedelta(days=days)


def test_the_patients_app_does_not_import_recommendations():
    app = Path(__file__).resolve().parents[1]
    offenders = []
    for module in app.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{module.name}: {name}" for name in names if name.split(".")[0] == "recommendations"]
    assert not offenders


def test_the_patient_list_shows_the_last_procedure():
    patient = PatientFactory(id="108", name="Henry Walsh")
    knee = ProcedureFactory(name="Total knee replacement")
    earlier = timezone.now() - timedelta(days=60)
    PatientProcedureFactory(patient=patient, procedure=ProcedureFactory(name="MRI of knee"), performed_at=earlier)
    PatientProcedureFactory(patient=patient, procedure=knee, performed_at=timezone.now() - timedelta(days=45))

    page = staff_client(CLINICIAN).get(LIST).content.decode()

    assert "Total knee replacement, " in page and "MRI of knee" not in page


@pytest.mark.parametrize(
    ("band", "expected"),
    [("0-17", {"child"}), ("65-79", {"sixty-five", "seventy-nine"}), ("80+", {"eighty"}), ("unknown", {"nobody"})],
)
def test_the_age_band_filter_uses_whole_years_today(band, expected):
    PatientFactory(id="child", birth_date=born_years_ago(17))
    PatientFactory(id="sixty-five", birth_date=born_years_ago(65))
    PatientFactory(id="seventy-nine", birth_date=born_years_ago(79))
    PatientFactory(id="eighty", birth_date=born_years_ago(80, days=0))  # eighty today
    PatientFactory(id="nobody", birth_date=None)

    response = staff_client(VIEWER).get(LIST, {"age_band": band})

    assert {patient.pk for patient in response.context["cl"].result_list} == expected


def test_the_patient_page_summarises_who_the_patient_is_and_the_history():
    patient = PatientFactory(id="108", name="Henry Walsh", height_cm=172, weight_kg=80.2, bmi=27.1, chronic_pain=True)
    knee = ProcedureFactory(name="Total knee replacement", department="general-surgery", is_surgery=True)
    entry = PatientProcedureFactory(
        patient=patient, procedure=knee, report="Right knee, no complications.\nDay 2: walking."
    )

    page = staff_client(VIEWER).get(f"{LIST}108/change/").content.decode()

    assert "Henry Walsh" in page
    assert "27.1" in page and "from height 172 cm and weight 80.2 kg" in page
    assert "General surgery" in page  # the department by name, not its slug
    assert "Right knee, no complications." in page and "Day 2" not in page  # the report's first line
    assert f"/admin/procedures/patientprocedure/{entry.pk}/change/" in page
    assert '<details id="patient-edit" class="workspace-edit">' in page  # collapsed for a viewer


def test_the_edit_form_is_open_for_a_clinician():
    PatientFactory(id="108")
    page = staff_client(CLINICIAN).get(f"{LIST}108/change/").content.decode()
    assert '<details id="patient-edit" class="workspace-edit" open>' in page


def test_the_add_page_shows_no_age_before_there_is_a_birth_date():
    page = staff_client(ADMIN).get(f"{LIST}add/").content.decode()
    assert "Age:" not in page and "None" not in page


def test_the_labels_read_as_people_write_them():
    page = staff_client(CLINICIAN).get(f"{LIST}add/").content.decode()
    assert "Height (cm)" in page and "Weight (kg)" in page and ">BMI:<" in page
    assert "Bmi" not in page and "Height cm" not in page


def test_an_admin_edit_writes_only_the_fields_it_changes_under_a_row_lock():
    PatientFactory(
        id="108", name="Ada", sex="female", birth_date=date(1950, 1, 1), height_cm=170, weight_kg=70, bmi=24.2
    )
    form = {
        "name": "Ada Byron",
        "sex": "female",
        "birth_date": "1950-01-01",
        "email": "",
        "height_cm": "170",
        "weight_kg": "70",
        "bmi": "24.2",
        "recommendations-TOTAL_FORMS": "0",
        "recommendations-INITIAL_FORMS": "0",
    }

    with CaptureQueriesContext(connection) as queries:
        response = staff_client(CLINICIAN).post(f"{LIST}108/change/", form)

    assert response.status_code == 302
    updates = [
        query["sql"] for query in queries if query["sql"].startswith("UPDATE") and "patients_patient" in query["sql"]
    ]
    assert len(updates) == 1
    assert '"name"' in updates[0] and '"weight_kg"' not in updates[0] and '"bmi"' not in updates[0]
    if connection.vendor == "postgresql":
        assert any("FOR NO KEY UPDATE" in query["sql"] for query in queries)
    assert Patient.objects.get(pk="108").name == "Ada Byron"
