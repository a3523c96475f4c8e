"""Provenance: every recommendation can answer, long after, "why — by which rule, thresholds and facts, or by whom?".

The engine's recommendations store the rule, the rule-set version, the facts the rule used and the engine
version; those recorded by hand store who recorded them. The API, the admin and the event payload show it.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from conftest import make_user
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation, RecommendationEvent
from recommendations.services import evaluate_patient
from recommendations.tests.factories import RecommendationFactory
from security.roles import ADMIN, CLINICIAN

pytestmark = pytest.mark.django_db

ENGINE_VERSION = "RuleEngine/2"


def stored(patient, rule: str) -> PatientRecommendation:
    return PatientRecommendation.objects.get(patient=patient, recommendation__rule=rule)


def test_physical_therapy_provenance_has_the_age_the_chronic_pain_and_the_threshold():
    patient = PatientFactory(birth_date=date(timezone.localdate().year - 79, 1, 1), chronic_pain=True)

    evaluate_patient(patient_id=patient.pk)

    assert stored(patient, "physical_therapy").provenance == {
        "source": "rule",
        "rule": "physical_therapy",
        "rule_set": 1,
        "facts": {"age": patient.age, "chronic_pain": True, "min_age": 65},
        "engine_version": ENGINE_VERSION,
    }


def test_weight_management_provenance_has_the_bmi_and_the_threshold():
    patient = PatientFactory(bmi=34.6)

    evaluate_patient(patient_id=patient.pk)

    provenance = stored(patient, "weight_management").provenance
    assert provenance["facts"] == {"bmi": 34.6, "min_bmi": 30.0}
    assert (provenance["rule"], provenance["rule_set"], provenance["engine_version"]) == (
        "weight_management",
        1,
        ENGINE_VERSION,
    )


def test_post_op_rehab_provenance_names_the_qualifying_procedure_and_the_window():
    patient = PatientFactory()
    knee = ProcedureFactory(id="ortho-tkr", name="Total knee replacement", department="Orthopaedics", is_surgery=True)
    performed_at = timezone.now() - timedelta(days=45)
    history = PatientProcedureFactory(patient=patient, procedure=knee, performed_at=performed_at)

    evaluate_patient(patient_id=patient.pk)

    assert stored(patient, "post_op_rehab").provenance["facts"] == {
        "procedure": {
            "id": "ortho-tkr",
            "patient_procedure": history.pk,
            "name": "Total knee replacement",
            "department": "orthopaedics",
            "performed_at": performed_at.isoformat(),
        },
        "window_days": 90,
        "departments": ["orthopaedics"],
    }


def test_the_api_and_the_event_payload_show_the_provenance(viewer_client):
    patient = PatientFactory(bmi=34.6)
    evaluate_patient(patient_id=patient.pk)
    link = stored(patient, "weight_management")

    shown = viewer_client.get(f"/api/v1/patient-recommendations/{link.pk}/").json()
    event = RecommendationEvent.objects.get(patient_recommendation=link)

    assert shown["provenance"] == link.provenance
    assert event.payload["provenance"] == link.provenance
    assert viewer_client.get(f"/api/v1/events/{event.pk}/").json()["payload"]["provenance"]["rule_set"] == 1


def test_provenance_cannot_be_written_through_the_api(clinician_client):
    patient = PatientFactory(bmi=34.6)
    evaluate_patient(patient_id=patient.pk)
    link = stored(patient, "weight_management")

    response = clinician_client.patch(
        f"/api/v1/patient-recommendations/{link.pk}/", {"provenance": {"rule_set": 99}}, format="json"
    )

    assert response.status_code == 200
    link.refresh_from_db()
    assert link.provenance["rule_set"] == 1


def test_a_manual_recommendation_through_the_api_records_who_made_it(clinician_client):
    patient = PatientFactory()
    programme = RecommendationFactory(id="por-123")

    response = clinician_client.post(
        "/api/v1/patient-recommendations/",
        {"patient": patient.pk, "recommendation": programme.pk, "reason": "Asked at the ward round."},
        format="json",
    )

    assert response.status_code == 201, response.content
    provenance = response.json()["provenance"]
    assert (provenance["source"], provenance["recorded_by"], provenance["via"]) == ("manual", "clinician-user", "api")
    event = RecommendationEvent.objects.get(patient_recommendation_id=response.json()["id"])
    assert event.payload["provenance"]["recorded_by"] == "clinician-user"


def test_a_manual_recommendation_in_the_admin_records_who_made_it(client):
    staff = make_user("ward-nurse", CLINICIAN, is_staff=True)
    client.force_login(staff)
    patient = PatientFactory()
    programme = RecommendationFactory(id="por-123")

    response = client.post(
        "/admin/recommendations/patientrecommendation/add/",
        {
            "patient": patient.pk,
            "recommendation": programme.pk,
            "recommended_at_0": timezone.localdate().isoformat(),
            "recommended_at_1": "09:00:00",
            "source": "manual",
            "reason": "Falls twice this month.",
            "status": "active",
        },
    )

    assert response.status_code == 302, response.content
    link = PatientRecommendation.objects.get(patient=patient)
    assert (link.provenance["recorded_by"], link.provenance["via"]) == ("ward-nurse", "admin")
    assert RecommendationEvent.objects.get(patient_recommendation=link).payload["provenance"] == link.provenance


def test_the_admin_shows_the_provenance_of_a_recommendation(client):
    client.force_login(make_user("auditor", ADMIN, is_staff=True))
    patient = PatientFactory(bmi=34.6)
    evaluate_patient(patient_id=patient.pk)
    link = stored(patient, "weight_management")

    page = client.get(f"/admin/recommendations/patientrecommendation/{link.pk}/change/").content.decode()

    assert "&quot;min_bmi&quot;: 30.0" in page
    assert "&quot;engine_version&quot;: &quot;RuleEngine/2&quot;" in page
