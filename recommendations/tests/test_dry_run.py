"""`POST /api/v1/patients/{id}/evaluate/?dry_run=true[&rule_set=<version>]`: what would be recommended, recorded
nowhere and sent nowhere; against the active version or, as a what-if, another one.
"""

from __future__ import annotations

from datetime import date

import pytest
from django.apps import apps
from django.core import mail

from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations import tasks
from recommendations.models import PatientRecommendation, RuleSet
from recommendations.services import activate_rule_set, create_rule_set, evaluate_patient
from recommendations.tests.test_evaluate_api import RECOMMENDATION_KEYS, every_rule_patient, years_ago

pytestmark = pytest.mark.django_db


def evaluate_url(patient_id: str, query: str = "") -> str:
    return f"/api/v1/patients/{patient_id}/evaluate/{query}"


def row_counts() -> dict[str, int]:
    """The number of rows of every model of the project, to prove that nothing was written."""
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


@pytest.fixture
def broker_sends(monkeypatch) -> list[int]:
    """Every event handed to the broker (the real send is replaced by a recorder)."""
    sent: list[int] = []
    monkeypatch.setattr(tasks, "send_event_to_consumer", sent.append)
    return sent


def stricter_version(**weight_management) -> RuleSet:
    return create_rule_set(parameters={"weight_management": weight_management})


def test_dry_run_answers_like_an_evaluation_and_records_and_publishes_nothing(
    clinician_client, broker_sends, django_capture_on_commit_callbacks
):
    patient = every_rule_patient()
    before = row_counts()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"patient", "evaluated_at", "recommendations", "dry_run", "rule_set"}
    assert (body["dry_run"], body["rule_set"]) == (True, 1)
    assert [item["rule"] for item in body["recommendations"]] == [
        "physical_therapy",
        "weight_management",
        "post_op_rehab",
    ]
    for item in body["recommendations"]:
        assert set(item) == RECOMMENDATION_KEYS
        assert (item["new"], item["patient_recommendation"], item["event"]) == (True, None, None)
        assert item["provenance"]["rule"] == item["rule"]
        assert item["provenance"]["rule_set"] == 1
        assert item["provenance"]["facts"]
    assert row_counts() == before
    assert callbacks == []
    assert broker_sends == []
    assert mail.outbox == []


def test_a_real_evaluation_after_the_dry_run_makes_what_it_announced(clinician_client, broker_sends):
    patient = every_rule_patient()
    preview = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true")).json()

    real = clinician_client.post(evaluate_url(patient.pk)).json()

    assert [(item["recommendation"], item["provenance"]) for item in preview["recommendations"]] == [
        (item["recommendation"], item["provenance"]) for item in real["recommendations"]
    ]
    assert all(item["new"] for item in real["recommendations"])


def test_dry_run_reports_an_active_recommendation_with_its_link_and_not_new(clinician_client):
    patient = PatientFactory(bmi=34.0)
    evaluate_patient(patient_id=patient.pk)
    link = PatientRecommendation.objects.get(patient=patient)

    (item,) = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true")).json()["recommendations"]

    assert (item["new"], item["patient_recommendation"], item["event"]) == (False, link.pk, None)


def test_dry_run_with_nothing_to_recommend_says_so(clinician_client):
    patient = PatientFactory(bmi=22.0)

    body = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true")).json()

    assert body["recommendations"] == []
    assert body["message"] == "Nothing to recommend"
    assert body["dry_run"] is True


def test_dry_run_does_not_create_a_missing_standard_definition(clinician_client):
    from recommendations.models import Recommendation

    Recommendation.objects.filter(rule="weight_management").delete()
    patient = PatientFactory(bmi=34.0)

    (item,) = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true")).json()["recommendations"]

    assert item["recommendation"] == "weight-management"
    assert not Recommendation.objects.filter(rule="weight_management").exists()


def test_what_if_evaluates_against_an_older_version(clinician_client):
    patient = PatientFactory(bmi=33.0)
    stricter = stricter_version(min_bmi=35)
    activate_rule_set(rule_set=stricter, reason="Stricter threshold")

    active = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true")).json()
    older = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true&rule_set=1")).json()

    assert (active["rule_set"], active["recommendations"]) == (2, [])
    assert older["rule_set"] == 1
    (item,) = older["recommendations"]
    assert item["provenance"]["facts"] == {"bmi": 33.0, "min_bmi": 30.0}
    assert item["provenance"]["rule_set"] == 1
    assert not PatientRecommendation.objects.filter(patient=patient).exists()


def test_what_if_against_a_version_not_yet_active(clinician_client):
    patient = PatientFactory(birth_date=years_ago(61), chronic_pain=True)
    younger = create_rule_set(parameters={"physical_therapy": {"min_age": 55}})

    body = clinician_client.post(evaluate_url(patient.pk, f"?dry_run=true&rule_set={younger.version}")).json()

    assert [item["rule"] for item in body["recommendations"]] == ["physical_therapy"]
    assert body["recommendations"][0]["provenance"]["facts"]["min_age"] == 55


@pytest.mark.parametrize("query", ["?rule_set=1", "?dry_run=false&rule_set=1", "?dry_run=0&rule_set=1"])
def test_a_rule_set_without_dry_run_is_400_and_records_nothing(clinician_client, query):
    patient = PatientFactory(bmi=34.0)

    response = clinician_client.post(evaluate_url(patient.pk, query))

    assert response.status_code == 400
    assert "rule_set" in response.json()
    assert not PatientRecommendation.objects.filter(patient=patient).exists()


@pytest.mark.parametrize(
    ("query", "field", "text"),
    [
        ("?dry_run=true&rule_set=99", "rule_set", "99"),
        ("?dry_run=true&rule_set=two", "rule_set", ""),
        ("?dry_run=true&rule_set=0", "rule_set", ""),
        ("?dry_run=perhaps", "dry_run", ""),
    ],
)
def test_bad_dry_run_options_are_400_naming_them(clinician_client, query, field, text):
    patient = PatientFactory(bmi=34.0)

    response = clinician_client.post(evaluate_url(patient.pk, query))

    assert response.status_code == 400
    assert text in response.json()[field][0]
    assert not PatientRecommendation.objects.filter(patient=patient).exists()


def test_dry_run_of_an_unknown_patient_is_404(clinician_client):
    assert clinician_client.post(evaluate_url("nobody", "?dry_run=true")).status_code == 404


def test_viewers_may_not_run_a_dry_run(viewer_client):
    patient = PatientFactory(bmi=34.0)

    assert viewer_client.post(evaluate_url(patient.pk, "?dry_run=true")).status_code == 403


def test_dry_run_sees_the_whole_history(clinician_client):
    patient = PatientFactory(birth_date=date(1990, 1, 1))
    knee = ProcedureFactory(name="Total knee replacement", department="orthopaedics", is_surgery=True)
    PatientProcedureFactory(patient=patient, procedure=knee)

    body = clinician_client.post(evaluate_url(patient.pk, "?dry_run=true")).json()

    assert [item["rule"] for item in body["recommendations"]] == ["post_op_rehab"]
