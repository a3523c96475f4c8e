"""What recommendations add to the clinician's workspace: the patient page's active recommendations with their
reasons and provenance after Evaluate, the reason column, and events and notifications a person can read."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import make_user
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import Notification, RecommendationEvent
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory
from security.roles import CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db

PATIENT_PAGE = "/admin/patients/patient/{}/change/"
LIST = "/admin/patients/patient/"


def staff_client(role: str) -> Client:
    client = Client()
    client.force_login(make_user(f"ward-{role}", role, is_staff=True))
    return client


def test_evaluate_on_the_patient_page_shows_the_recommendations_with_reason_and_provenance():
    PatientFactory(id="107", name="Grace Liu", birth_date=date(1960, 1, 1), chronic_pain=True, bmi=24.0)
    client = staff_client(CLINICIAN)

    response = client.post("/admin/patients/patient/107/evaluate/", follow=True)

    page = response.content.decode()
    summary = page[page.index('id="recommendations"') : page.index('id="procedure-history"')]
    assert "Physical Therapy" in summary
    assert "chronic pain recorded" in summary  # the reason
    assert "rule physical_therapy, rule set v1" in summary and "chronic pain yes" in summary  # the provenance
    assert "Physical Therapy (new:" in page  # and the message saying what Evaluate did


def test_a_recommendation_recorded_by_hand_says_who_recorded_it():
    patient = PatientFactory(id="108")
    PatientRecommendationFactory(
        patient=patient, reason="Ward round", provenance={"source": "manual", "recorded_by": "lead", "via": "admin"}
    )
    page = staff_client(VIEWER).get(PATIENT_PAGE.format("108")).content.decode()
    assert "Ward round" in page and "recorded by lead via admin" in page


def test_a_viewer_sees_the_recommendations_but_neither_button():
    PatientRecommendationFactory(patient=PatientFactory(id="108"), reason="Ward round")
    page = staff_client(VIEWER).get(PATIENT_PAGE.format("108")).content.decode()
    assert "Ward round" in page
    assert "evaluate-button" not in page and "preview-button" not in page


def test_the_recommendation_list_has_a_reason_column():
    PatientRecommendationFactory(reason="BMI 34.6 > 30")
    page = staff_client(VIEWER).get("/admin/recommendations/patientrecommendation/").content.decode()
    assert "column-reason_line" in page and "BMI 34.6 &gt; 30" in page


def test_events_show_the_patient_and_definition_as_links_and_the_payload_pretty_printed():
    PatientFactory(id="108", name="Henry Walsh")
    programme = RecommendationFactory(id="por-9", name="Fall Prevention")
    event = RecommendationEvent.objects.create(
        patient_id="108", recommendation_id=programme.pk, payload={"reason": "age 78 > 65", "rule": "physical_therapy"}
    )
    client = staff_client(VIEWER)

    listing = client.get("/admin/recommendations/recommendationevent/").content.decode()
    page = client.get(f"/admin/recommendations/recommendationevent/{event.pk}/change/").content.decode()

    assert '<a href="/admin/patients/patient/108/change/">Henry Walsh (108)</a>' in listing
    assert '<a href="/admin/recommendations/recommendation/por-9/change/">' in listing
    # One key a line, indented (PostgreSQL's jsonb keeps its own key order).
    assert "\n  &quot;reason&quot;: &quot;age 78 &gt; 65&quot;" in page
    assert "\n  &quot;rule&quot;: &quot;physical_therapy&quot;" in page


def test_notifications_name_the_patient_in_the_subject():
    PatientFactory(id="108", name="Henry Walsh")
    event = RecommendationEvent.objects.create(patient_id="108", recommendation_id="physical-therapy")
    Notification.objects.create(event=event, recipients=["ward@localhost"], subject="Physical Therapy", body="...")
    listing = staff_client(VIEWER).get("/admin/recommendations/notification/").content.decode()
    assert "Physical Therapy — Henry Walsh (108)" in listing


def test_preview_shows_its_answer_on_the_patient_page_and_records_nothing():
    PatientFactory(id="105", name="Elena Rossi", bmi=34.6)
    client = staff_client(CLINICIAN)

    page = client.post("/admin/patients/patient/105/preview/").content.decode()

    assert 'id="patient-summary"' in page and 'id="preview-results"' in page
    assert "Weight Management Program" in page and "would be new" in page
    assert 'action="/admin/patients/patient/105/change/"' in page  # the edit form still saves the patient
    assert "No active recommendation." in page


def test_the_patient_list_shows_the_last_procedure_and_the_active_recommendations():
    patient = PatientFactory(id="108", name="Henry Walsh")
    knee = ProcedureFactory(name="Total knee replacement")
    PatientProcedureFactory(
        patient=patient,
        procedure=ProcedureFactory(name="MRI of knee"),
        performed_at=timezone.now() - timedelta(days=60),
    )
    PatientProcedureFactory(patient=patient, procedure=knee, performed_at=timezone.now() - timedelta(days=45))
    PatientRecommendationFactory(patient=patient, recommendation=RecommendationFactory(name="Physical Therapy"))
    PatientRecommendationFactory(
        patient=patient, recommendation=RecommendationFactory(name="Smoking Cessation"), status="dismissed"
    )

    page = staff_client(CLINICIAN).get(LIST).content.decode()

    assert "Total knee replacement, " in page and "MRI of knee" not in page
    assert "Physical Therapy" in page and "Smoking Cessation" not in page


def list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(LIST).status_code == 200
    return len(queries)


def test_the_patient_list_costs_the_same_queries_for_2_or_12_patients():
    client = staff_client(CLINICIAN)

    def add_patients(count: int) -> None:
        for _ in range(count):
            patient = PatientFactory()
            PatientProcedureFactory(patient=patient)
            PatientRecommendationFactory(patient=patient)

    add_patients(2)
    client.get(LIST)  # sessions and permissions cached like in a real session
    few = list_queries(client)
    add_patients(10)
    assert list_queries(client) == few


def test_the_patient_list_query_budget(django_assert_num_queries):
    client = staff_client(CLINICIAN)
    for _ in range(5):
        patient = PatientFactory()
        PatientProcedureFactory(patient=patient)
        PatientRecommendationFactory(patient=patient)
    # The session, the user and their permissions, the filters' and the list's counts (inside the hardened change
    # list's savepoint and its release), the page of patients with their last procedure (subqueries), and their
    # active recommendations (one prefetch).
    with django_assert_num_queries(12):
        client.get(LIST)


def test_the_has_active_recommendation_filter():
    PatientRecommendationFactory(patient=PatientFactory(id="active"))
    PatientRecommendationFactory(patient=PatientFactory(id="done"), status="completed")
    PatientFactory(id="none")
    client = staff_client(VIEWER)

    def shown(value: str) -> set[str]:
        response = client.get(LIST, {"has_active_recommendation": value})
        return {patient.pk for patient in response.context["cl"].result_list}

    assert shown("yes") == {"active"}
    assert shown("no") == {"done", "none"}
