"""`POST /api/v1/patients/{id}/evaluate/` as a clinician uses it: the response, idempotency, roles, query budget.

Events are only written here, never published: the API tests run inside one transaction whose commit (and so
the after-commit publishing) never happens. Publishing and consuming are covered by `test_outbox.py`.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clinrec.cache import token_queries_per_request
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.definitions import STANDARD_DEFINITIONS
from recommendations.models import PatientRecommendation, Recommendation, RecommendationEvent
from recommendations.tests.factories import PatientRecommendationFactory

pytestmark = pytest.mark.django_db

RECOMMENDATION_KEYS = {
    "recommendation",
    "name",
    "rule",
    "reason",
    "patient_recommendation",
    "new",
    "event",
    "provenance",
}

# Measured on SQLite and PostgreSQL alike, for a patient for whom all three rules fire for the first time:
# no query to authenticate (the caller's role snapshot is taken by an earlier request), 2 savepoints (request and
# service),
# the patient row locked, the active rule set, its whole history in one query, the definitions, the active
# links, then per new recommendation the link, its audit-trail record and the event
# (3 × 3). Nothing depends on the history.
FIRST_EVALUATION_QUERIES = 18
# The same evaluation again: everything is already active, so nothing is written.
REPEATED_EVALUATION_QUERIES = 12


def evaluate_url(patient_id: str) -> str:
    return f"/api/v1/patients/{patient_id}/evaluate/"


def years_ago(years: int) -> date:
    """A birth date making the patient `years` or `years - 1` old: enough to stay clear of a threshold."""
    return date(timezone.localdate().year - years, 1, 1)


def every_rule_patient(*, procedures: int = 1, **overrides):
    """A patient for whom all three rules fire: 80, chronic pain, BMI 34, recent orthopaedic surgeries."""
    patient = PatientFactory(birth_date=years_ago(80), chronic_pain=True, bmi=34.0, **overrides)
    knee = ProcedureFactory(name="Total knee replacement", department="orthopaedics", is_surgery=True)
    PatientProcedureFactory.create_batch(procedures, patient=patient, procedure=knee)
    return patient


def by_rule(response) -> dict[str, dict]:
    return {item["rule"]: item for item in response.json()["recommendations"]}


# --- the response ---------------------------------------------------------------------------------------------


def test_evaluate_answers_each_recommendation_with_its_definition_link_and_event(clinician_client):
    patient = every_rule_patient()
    before = timezone.now()

    response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"patient", "evaluated_at", "recommendations"}
    assert body["patient"] == patient.pk
    assert before <= parse_datetime(body["evaluated_at"]) <= timezone.now()
    assert all(set(item) == RECOMMENDATION_KEYS for item in body["recommendations"])
    found = by_rule(response)
    assert {rule: (item["recommendation"], item["name"]) for rule, item in found.items()} == {
        "physical_therapy": ("physical-therapy", "Physical Therapy"),
        "weight_management": ("weight-management", "Weight Management Program"),
        "post_op_rehab": ("post-op-rehab", "Post-Op Rehabilitation Plan"),
    }
    assert "chronic pain" in found["physical_therapy"]["reason"]
    assert "BMI 34" in found["weight_management"]["reason"]
    assert "Total knee replacement" in found["post_op_rehab"]["reason"]
    for item in found.values():
        assert item["new"] is True
        link = PatientRecommendation.objects.get(pk=item["patient_recommendation"])
        assert (link.patient_id, link.recommendation_id) == (patient.pk, item["recommendation"])
        assert (link.status, link.source, link.reason) == ("active", "rule", item["reason"])
        event = RecommendationEvent.objects.get(pk=item["event"])
        assert (event.patient_recommendation_id, event.status) == (link.pk, "pending")


def test_evaluate_records_one_link_and_one_event_per_new_recommendation(clinician_client):
    patient = every_rule_patient()

    clinician_client.post(evaluate_url(patient.pk))

    assert PatientRecommendation.objects.filter(patient=patient).count() == 3
    assert RecommendationEvent.objects.filter(patient_id=patient.pk).count() == 3


def test_patient_matching_no_rule_gets_empty_list_and_nothing_to_recommend(clinician_client):
    patient = PatientFactory(birth_date=years_ago(40), chronic_pain=False, bmi=24.2)

    response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    assert response.json()["recommendations"] == []
    assert response.json()["message"] == "Nothing to recommend"
    assert not PatientRecommendation.objects.filter(patient=patient).exists()
    assert not RecommendationEvent.objects.filter(patient_id=patient.pk).exists()


def test_patient_without_procedure_history_is_evaluated_on_the_other_rules(clinician_client):
    patient = PatientFactory(birth_date=years_ago(80), chronic_pain=True, bmi=34.0)

    response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    assert set(by_rule(response)) == {"physical_therapy", "weight_management"}
    assert "message" not in response.json()


def test_unknown_patient_is_404_and_records_nothing(clinician_client):
    response = clinician_client.post(evaluate_url("no-such-patient"))

    assert response.status_code == 404
    assert not PatientRecommendation.objects.exists()
    assert not RecommendationEvent.objects.exists()


def test_numeric_patient_id_is_evaluated(clinician_client):
    patient = PatientFactory(id="108", birth_date=years_ago(80), chronic_pain=True)

    response = clinician_client.post(evaluate_url("108"))

    assert response.status_code == 200
    assert response.json()["patient"] == "108"
    assert set(by_rule(response)) == {"physical_therapy"}
    assert PatientRecommendation.objects.filter(patient=patient).count() == 1


# --- idempotency ---------------------------------------------------------------------------------------------


def test_second_evaluation_reports_active_recommendations_as_not_new_and_creates_nothing(clinician_client):
    patient = every_rule_patient()
    first = by_rule(clinician_client.post(evaluate_url(patient.pk)))

    response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    second = by_rule(response)
    assert set(second) == set(first)
    for rule, item in second.items():
        assert item["new"] is False
        assert item["event"] is None
        assert item["patient_recommendation"] == first[rule]["patient_recommendation"]
    assert PatientRecommendation.objects.filter(patient=patient).count() == 3
    assert RecommendationEvent.objects.filter(patient_id=patient.pk).count() == 3


def test_manually_recorded_active_recommendation_is_not_made_again(clinician_client):
    patient = PatientFactory(bmi=34.0)
    manual = PatientRecommendationFactory(
        patient=patient, recommendation=Recommendation.objects.get(rule="weight_management"), status="active"
    )

    response = clinician_client.post(evaluate_url(patient.pk))

    (item,) = response.json()["recommendations"]
    assert (item["new"], item["event"], item["patient_recommendation"]) == (False, None, manual.pk)
    assert not RecommendationEvent.objects.filter(patient_id=patient.pk).exists()


@pytest.mark.parametrize("closed_status", ["dismissed", "completed"])
def test_dismissed_or_completed_recommendation_is_recommended_again_as_new(clinician_client, closed_status):
    patient = PatientFactory(bmi=34.0)
    closed = PatientRecommendationFactory(
        patient=patient, recommendation=Recommendation.objects.get(rule="weight_management"), status=closed_status
    )

    response = clinician_client.post(evaluate_url(patient.pk))

    (item,) = response.json()["recommendations"]
    assert item["new"] is True
    assert item["patient_recommendation"] != closed.pk
    assert item["event"] is not None
    closed.refresh_from_db()
    assert closed.status == closed_status
    assert PatientRecommendation.objects.get(pk=item["patient_recommendation"]).status == "active"


# --- definitions ---------------------------------------------------------------------------------------------


def test_fresh_database_without_definitions_creates_the_standard_ones_on_first_evaluation(clinician_client):
    Recommendation.objects.all().delete()
    patient = every_rule_patient()

    response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200, response.content
    assert {item["recommendation"] for item in response.json()["recommendations"]} == {
        standard.id for standard in STANDARD_DEFINITIONS
    }
    assert set(Recommendation.objects.values_list("id", "rule", "name")) == {
        (standard.id, standard.rule, standard.name) for standard in STANDARD_DEFINITIONS
    }


def test_evaluation_uses_a_renamed_definition_of_the_rule(clinician_client):
    Recommendation.objects.filter(rule="weight_management").update(name="Healthy Weight Clinic")
    patient = PatientFactory(bmi=34.0)

    response = clinician_client.post(evaluate_url(patient.pk))

    (item,) = response.json()["recommendations"]
    assert (item["recommendation"], item["name"]) == ("weight-management", "Healthy Weight Clinic")


def test_detaching_a_rule_from_its_definition_switches_the_rule_off(clinician_client):
    Recommendation.objects.filter(rule="weight_management").update(rule=None, name="Retired programme")
    patient = PatientFactory(bmi=34.0)

    response = clinician_client.post(evaluate_url(patient.pk))

    assert response.status_code == 200, response.content
    assert response.json()["recommendations"] == []
    assert response.json()["message"] == "Nothing to recommend"
    assert not Recommendation.objects.filter(rule="weight_management").exists()
    assert not PatientRecommendation.objects.filter(patient=patient).exists()


# --- roles ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_fixture", ["clinician_client", "admin_client_jwt"])
def test_clinician_and_admin_may_evaluate(request, client_fixture):
    client = request.getfixturevalue(client_fixture)
    patient = PatientFactory(bmi=34.0)

    response = client.post(evaluate_url(patient.pk))

    assert response.status_code == 200
    assert PatientRecommendation.objects.filter(patient=patient).count() == 1


def test_viewer_may_not_evaluate_403(viewer_client):
    patient = PatientFactory(bmi=34.0)

    response = viewer_client.post(evaluate_url(patient.pk))

    assert response.status_code == 403
    assert not PatientRecommendation.objects.exists()


def test_anonymous_evaluation_is_401(anon_client):
    patient = PatientFactory(bmi=34.0)

    response = anon_client.post(evaluate_url(patient.pk))

    assert response.status_code == 401
    assert not PatientRecommendation.objects.exists()


def test_get_on_evaluate_is_405(clinician_client):
    patient = PatientFactory(bmi=34.0)

    assert clinician_client.get(evaluate_url(patient.pk)).status_code == 405
    assert not PatientRecommendation.objects.exists()


# --- query budget --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("procedures", [1, 200])
def test_evaluation_stays_within_its_query_budget_whatever_the_history(
    clinician_client, django_assert_max_num_queries, procedures
):
    patient = every_rule_patient(procedures=procedures)
    clinician_client.get("/api/v1/")  # the clinician's role snapshot: taken once, not per request

    with django_assert_max_num_queries(FIRST_EVALUATION_QUERIES + token_queries_per_request()):
        first = clinician_client.post(evaluate_url(patient.pk))
    with django_assert_max_num_queries(REPEATED_EVALUATION_QUERIES + token_queries_per_request()):
        again = clinician_client.post(evaluate_url(patient.pk))

    assert [item["new"] for item in first.json()["recommendations"]] == [True, True, True]
    assert [item["new"] for item in again.json()["recommendations"]] == [False, False, False]


def test_evaluation_costs_the_same_queries_for_1_and_200_procedures(clinician_client):
    def queries_to_evaluate(patient) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert clinician_client.post(evaluate_url(patient.pk)).status_code == 200
        return len(captured)

    short_history = every_rule_patient(procedures=1)
    long_history = every_rule_patient(procedures=200)
    clinician_client.get("/api/v1/")  # the clinician's role snapshot: taken once, not per request

    expected = FIRST_EVALUATION_QUERIES + token_queries_per_request()
    assert queries_to_evaluate(short_history) == queries_to_evaluate(long_history) == expected


def test_old_surgeries_in_a_long_history_do_not_hide_a_recent_one(clinician_client):
    patient = PatientFactory()
    knee = ProcedureFactory(name="Total knee replacement", department="orthopaedics", is_surgery=True)
    hip = ProcedureFactory(name="Total hip replacement", department="Orthopaedics", is_surgery=True)
    PatientProcedureFactory.create_batch(
        50, patient=patient, procedure=knee, performed_at=timezone.now() - timedelta(days=400)
    )
    PatientProcedureFactory(patient=patient, procedure=hip, performed_at=timezone.now() - timedelta(days=3))

    response = clinician_client.post(evaluate_url(patient.pk))

    assert set(by_rule(response)) == {"post_op_rehab"}
    assert "Total hip replacement" in by_rule(response)["post_op_rehab"]["reason"]
