"""The admin's "Merge into…": a confirmation page shows what will move and collapse before anything happens."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from conftest import make_user
from patients.models import Patient, PatientMerge
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory
from security.roles import CLINICIAN

pytestmark = pytest.mark.django_db


@pytest.fixture
def duplicate():
    at = timezone.now() - datetime.timedelta(days=3)
    target, source = PatientFactory(id="keep", email=""), PatientFactory(id="dup", email="dup@example.org")
    hip = ProcedureFactory(name="Hip replacement")
    PatientProcedureFactory(patient=target, procedure=hip, performed_at=at)
    PatientProcedureFactory(patient=source, procedure=hip, performed_at=at)
    PatientProcedureFactory(patient=source, procedure=ProcedureFactory(name="Knee scope"))
    programme = RecommendationFactory(name="Physio")
    PatientRecommendationFactory(patient=target, recommendation=programme, recommended_at=at)
    PatientRecommendationFactory(patient=source, recommendation=programme, recommended_at=timezone.now())
    return source


def test_the_action_leads_to_a_confirmation_page_that_changes_nothing(client, admin_user_session, duplicate):
    changelist = reverse("admin:patients_patient_changelist")
    chosen = client.post(changelist, {"action": "merge_into", "_selected_action": ["dup"]})
    assert chosen.status_code == 302 and chosen["Location"] == "/admin/patients/patient/dup/merge/"

    page = client.get("/admin/patients/patient/dup/merge/", {"target": "keep"})

    assert page.status_code == 200
    html = page.content.decode()
    assert 'class="moved-procedure">Procedure Knee scope' in html
    assert 'class="collapsed-procedure">Procedure Hip replacement' in html
    assert 'class="collapsed-recommendation">Recommendation Physio of dup' in html
    assert 'class="filled-field">email: dup@example.org' in html
    assert Patient.objects.get(pk="dup").merged_into_id is None and not PatientMerge.objects.exists()


def test_confirming_merges_with_the_admin_user_and_goes_to_the_target(client, admin_user_session, duplicate):
    response = client.post("/admin/patients/patient/dup/merge/", {"target": "keep", "confirm": "yes"})

    assert response.status_code == 302 and response["Location"] == "/admin/patients/patient/keep/change/"
    assert Patient.objects.get(pk="dup").merged_into_id == "keep"
    assert PatientMerge.objects.get().merged_by == admin_user_session


@pytest.mark.parametrize(
    ("target", "message"), [("dup", "cannot be merged into itself"), ("nobody", "No patient with id")]
)
def test_a_bad_target_is_explained_and_merges_nothing(client, admin_user_session, duplicate, target, message):
    response = client.post("/admin/patients/patient/dup/merge/", {"target": target, "confirm": "yes"})

    assert response.status_code == 200 and message in response.content.decode()
    assert not PatientMerge.objects.exists()


def test_clinicians_have_neither_the_action_nor_the_page(client, duplicate):
    client.force_login(make_user("nurse", CLINICIAN, is_staff=True))

    page = client.get(reverse("admin:patients_patient_changelist"))
    assert page.status_code == 200 and "merge_into" not in page.content.decode()
    assert client.get("/admin/patients/patient/dup/merge/", {"target": "keep"}).status_code == 403
