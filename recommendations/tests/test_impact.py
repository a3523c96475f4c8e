"""`GET /api/v1/rule-sets/{version}/impact/`: what activating a version would change, over the population.

The population is generated with known groups, so the expected counts follow from how it was built; the
report is set-wise (a fixed number of queries whatever the population) and records nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinrec.cache import token_queries_per_request
from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import PatientRecommendation, RuleSet
from recommendations.services import create_rule_set, evaluate_patient
from recommendations.tests.test_dry_run import row_counts
from recommendations.tests.test_evaluate_api import years_ago

pytestmark = pytest.mark.django_db


def impact_url(version: int, query: str = "") -> str:
    return f"/api/v1/rule-sets/{version}/impact/{query}"


def generate_population(*, scale: int = 1) -> dict[str, list[str]]:
    """Patients in groups whose fate under the candidate version below is known; returns the ids per group."""
    spine = ProcedureFactory(name="Lumbar laminectomy", department="neurosurgery", is_surgery=True)
    knee = ProcedureFactory(name="Total knee replacement", department="orthopaedics", is_surgery=True)
    groups = {
        "bmi_31": [PatientFactory(bmi=31.0).pk for _ in range(4 * scale)],  # over 30, not over 32
        "bmi_33": [PatientFactory(bmi=33.0).pk for _ in range(3 * scale)],  # over both
        "age_68": [PatientFactory(birth_date=years_ago(69), chronic_pain=True).pk for _ in range(2 * scale)],
        "spine": [],
        "knee": [],
        "healthy": [PatientFactory(bmi=22.0).pk for _ in range(5 * scale)],
    }
    for _ in range(3 * scale):
        patient = PatientFactory(bmi=22.0)
        PatientProcedureFactory(patient=patient, procedure=spine, performed_at=timezone.now() - timedelta(days=5))
        PatientProcedureFactory(patient=patient, procedure=knee, performed_at=timezone.now() - timedelta(days=400))
        groups["spine"].append(patient.pk)
    for _ in range(scale):
        patient = PatientFactory(bmi=22.0)
        PatientProcedureFactory(patient=patient, procedure=knee, performed_at=timezone.now() - timedelta(days=20))
        groups["knee"].append(patient.pk)
    return groups


def candidate() -> RuleSet:
    """BMI threshold 32 (was 30), age threshold 70 (was 65), neurosurgery admissible too."""
    return create_rule_set(
        parameters={
            "weight_management": {"min_bmi": 32},
            "physical_therapy": {"min_age": 70},
            "post_op_rehab": {"departments": ["orthopaedics", "neurosurgery"]},
        }
    )


def by_rule(body) -> dict[str, dict]:
    return {row["rule"]: row for row in body["recommendations"]}


def test_impact_counts_what_a_version_would_add_and_no_longer_make(admin_client_jwt):
    groups = generate_population()
    version = candidate()
    before = row_counts()

    response = admin_client_jwt.get(impact_url(version.version))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["version"], body["compared_with"]) == (version.version, 1)
    assert body["patients"] == sum(len(ids) for ids in groups.values())
    rows = by_rule(body)
    weight = rows["weight_management"]
    assert (weight["recommendation"], weight["name"]) == ("weight-management", "Weight Management Program")
    assert weight["would_add"] == {"count": 0, "sample": []}
    assert weight["would_no_longer_make"]["count"] == len(groups["bmi_31"])
    assert sorted(weight["would_no_longer_make"]["sample"]) == sorted(groups["bmi_31"])
    assert weight["unchanged"] == len(groups["bmi_33"])
    therapy = rows["physical_therapy"]
    assert (therapy["would_add"]["count"], therapy["would_no_longer_make"]["count"]) == (0, len(groups["age_68"]))
    rehab = rows["post_op_rehab"]
    assert rehab["would_add"]["count"] == len(groups["spine"])
    assert set(rehab["would_add"]["sample"]) == set(groups["spine"])
    assert (rehab["would_no_longer_make"]["count"], rehab["unchanged"]) == (0, len(groups["knee"]))
    assert row_counts() == before


def test_impact_samples_are_capped_but_counts_are_not(admin_client_jwt):
    groups = generate_population(scale=3)
    version = candidate()

    weight = by_rule(admin_client_jwt.get(impact_url(version.version, "?sample=2")).json())["weight_management"]

    assert weight["would_no_longer_make"]["count"] == len(groups["bmi_31"]) == 12
    assert len(weight["would_no_longer_make"]["sample"]) == 2
    assert set(weight["would_no_longer_make"]["sample"]) <= set(groups["bmi_31"])


def test_impact_ignores_what_patients_already_have_recorded(admin_client_jwt):
    patient = PatientFactory(bmi=31.0)
    evaluate_patient(patient_id=patient.pk)
    version = candidate()

    weight = by_rule(admin_client_jwt.get(impact_url(version.version)).json())["weight_management"]

    assert weight["would_no_longer_make"]["sample"] == [patient.pk]
    assert PatientRecommendation.objects.get(patient=patient).status == "active"


def test_impact_of_the_active_version_changes_nothing(admin_client_jwt):
    generate_population()

    rows = admin_client_jwt.get(impact_url(1)).json()["recommendations"]

    assert all(row["would_add"]["count"] == row["would_no_longer_make"]["count"] == 0 for row in rows)


def test_impact_runs_in_the_same_few_queries_whatever_the_population(admin_client_jwt, django_assert_max_num_queries):
    def queries_for_impact() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client_jwt.get(impact_url(version.version)).status_code == 200
        return len(captured)

    version = candidate()
    generate_population(scale=1)
    admin_client_jwt.get("/api/v1/")  # the admin's role snapshot: taken once, not per request
    small = queries_for_impact()
    generate_population(scale=5)
    large = queries_for_impact()

    assert small == large
    # The request's savepoint and its release, the version, the active version, the
    # definitions, and the whole population with its histories in one query.
    with django_assert_max_num_queries(6 + token_queries_per_request()):
        admin_client_jwt.get(impact_url(version.version))


@pytest.mark.parametrize("client_name", ["viewer_client", "clinician_client"])
def test_only_the_admin_role_sees_the_impact(request, client_name):
    assert request.getfixturevalue(client_name).get(impact_url(1)).status_code == 403


def test_impact_of_an_unknown_version_is_404(admin_client_jwt):
    assert admin_client_jwt.get(impact_url(77)).status_code == 404


@pytest.mark.parametrize("sample", ["-1", "101", "many"])
def test_a_bad_sample_size_is_400(admin_client_jwt, sample):
    response = admin_client_jwt.get(impact_url(1, f"?sample={sample}"))

    assert response.status_code == 400
    assert "sample" in response.json()
