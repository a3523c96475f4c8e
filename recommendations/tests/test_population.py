"""Population evaluation: the set-wise run records exactly what `evaluate_patient` records, patient by patient.

Links (with reason, status, source and provenance), their audit history rows and their outbox events are
compared on the seed hospital and on a generated one full of boundary cases; the API answers 202 with a
Location to follow the run; the one active recommendation per patient and definition holds even when a
concurrent write got there first.
"""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Max
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from simple_history.models import HistoricalRecords

from conftest import make_user
from patients.models import Patient
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import PatientProcedureFactory, ProcedureFactory
from recommendations.models import (
    EventStatus,
    PatientRecommendation,
    PopulationRun,
    PopulationRunStatus,
    RecommendationEvent,
    RecommendationSource,
    RecommendationStatus,
)
from recommendations.seed import seed_mock_hospital, seed_synthetic_patients
from recommendations.services import evaluate_chunk, evaluate_patient, start_population_run
from recommendations.services import population as population_module
from recommendations.tests.factories import PatientRecommendationFactory

pytestmark = pytest.mark.django_db


def run_population(*, at, patient_ids=None, chunk_size=7) -> PopulationRun:
    run, chunks = start_population_run(patient_ids=patient_ids, chunk_size=chunk_size, at=at)
    for chunk in chunks:
        evaluate_chunk(run_id=run.pk, patient_ids=chunk)
    return PopulationRun.objects.get(pk=run.pk)


def recorded() -> tuple[set, list]:
    """Every rule-made link and every event, without their ids (which differ between two runs)."""
    links = {
        (link.patient_id, link.recommendation_id, link.recommended_at, link.source, link.reason, link.status)
        + (repr(sorted(link.provenance.items())),)
        for link in PatientRecommendation.objects.filter(source=RecommendationSource.RULE)
    }
    events = sorted(
        (
            event.patient_id,
            event.recommendation_id,
            event.event_type,
            event.status,
            event.patient_recommendation.patient_id,
            repr(sorted((k, v) for k, v in event.payload.items() if k != "patient_recommendation")),
        )
        for event in RecommendationEvent.objects.select_related("patient_recommendation")
    )
    return links, events


def history_mark() -> int:
    return PatientRecommendation.history.aggregate(mark=Max("history_id"))["mark"] or 0


def history_since(mark: int) -> list:
    """The audit rows written after `mark`, without ids, each saying whether it describes the link of its id."""
    return sorted(
        (
            row.history_type,
            row.patient_id,
            row.recommendation_id,
            row.recommended_at,
            row.source,
            row.reason,
            row.status,
            repr(sorted(row.provenance.items())),
            row.history_user_id,
            row.history_change_reason,
            row.history_source,
            row.history_client_address,
            PatientRecommendation.objects.filter(
                pk=row.id, patient_id=row.patient_id, recommendation_id=row.recommendation_id
            ).exists(),
        )
        for row in PatientRecommendation.history.filter(history_id__gt=mark)
    )


def forget_rule_made() -> None:
    RecommendationEvent.objects.all().delete()
    PatientRecommendation.objects.filter(source=RecommendationSource.RULE).delete()


def assert_set_wise_equals_per_patient() -> PopulationRun:
    at = timezone.now()
    mark = history_mark()
    run = run_population(at=at)
    set_wise = recorded()
    set_wise_history = history_since(mark)
    forget_rule_made()
    mark = history_mark()
    for patient_id in Patient.objects.order_by("pk").values_list("pk", flat=True):
        evaluate_patient(patient_id=patient_id, at=at)
    per_patient = recorded()
    assert set_wise[0] == per_patient[0]
    assert set_wise[1] == per_patient[1]
    # The audit trail too: one "created" row per new link, naming it, with the same who and where.
    assert set_wise_history == history_since(mark)
    assert len(set_wise_history) == len(set_wise[0]) and all(row[0] == "+" and row[-1] for row in set_wise_history)
    return run


def boundary_hospital() -> None:
    """Patients on each side of every threshold, and with links already there (active or not)."""
    today = timezone.localdate()
    knee = ProcedureFactory(name="Total knee replacement", department="orthopaedics", is_surgery=True)
    consult = ProcedureFactory(name="Orthopaedic consultation", department="orthopaedics", is_surgery=False)
    cabg = ProcedureFactory(name="Coronary bypass", department="cardiology", is_surgery=True)

    def born(age: int, days_since_birthday: int) -> date:
        last = today - timedelta(days=days_since_birthday)
        return last.replace(year=last.year - age) if not (last.month == 2 and last.day == 29) else last

    PatientFactory(id="age-65-today", birth_date=born(65, 0), chronic_pain=True)
    PatientFactory(id="age-65-tomorrow", birth_date=born(65, -1) - timedelta(days=0), chronic_pain=True)
    PatientFactory(id="age-66", birth_date=born(66, 10), chronic_pain=True)
    PatientFactory(id="age-90-no-pain", birth_date=born(90, 10), chronic_pain=False)
    PatientFactory(id="no-birth-date", birth_date=None, chronic_pain=True)
    PatientFactory(id="bmi-30", bmi=30.0)
    PatientFactory(id="bmi-30-1", bmi=30.1)
    PatientFactory(id="bmi-none", bmi=None, height_cm=None, weight_kg=None)
    now = timezone.now()
    for pid, procedure, days in [
        ("surgery-89-days", knee, 89),
        ("surgery-91-days", knee, 91),
        ("surgery-today", knee, 0),
        ("consult-only", consult, 5),
        ("cardiac-surgery", cabg, 5),
    ]:
        PatientProcedureFactory(patient=PatientFactory(id=pid), procedure=procedure, performed_at=now - timedelta(days))
    many = PatientFactory(id="long-history", bmi=35.0, chronic_pain=True, birth_date=born(80, 3))
    for days in range(0, 200, 2):
        PatientProcedureFactory(patient=many, procedure=knee, performed_at=now - timedelta(days=days, hours=1))
    PatientFactory(id="no-history")
    # Already has Weight Management active: nothing new for it. Had it once, completed: recommended again.
    evaluate_patient(patient_id="bmi-30-1")
    PatientRecommendation.objects.filter(patient_id="bmi-30-1").update(source=RecommendationSource.MANUAL)
    completed = PatientFactory(id="completed-before", bmi=40.0)
    evaluate_patient(patient_id=completed.pk)
    PatientRecommendation.objects.filter(patient=completed).update(
        status=RecommendationStatus.COMPLETED, source=RecommendationSource.MANUAL
    )
    RecommendationEvent.objects.all().delete()


def test_set_wise_run_records_what_evaluate_patient_records_on_the_seed_hospital():
    seed_mock_hospital()
    run = assert_set_wise_equals_per_patient()
    assert run.status == PopulationRunStatus.DONE
    assert (run.done, run.total) == (24, 24)
    assert run.counts == {"physical-therapy": 4, "weight-management": 4, "post-op-rehab": 2}


def test_set_wise_run_records_what_evaluate_patient_records_on_boundary_cases():
    boundary_hospital()
    run = assert_set_wise_equals_per_patient()
    assert run.errors == []
    # The boundary cases really are boundaries: each rule fired for some and not for their neighbours.
    at = timezone.now()
    forget_rule_made()
    run_population(at=at)
    made = set(PatientRecommendation.objects.filter(source="rule").values_list("patient_id", "recommendation_id"))
    assert ("age-66", "physical-therapy") in made and ("age-65-today", "physical-therapy") not in made
    assert ("surgery-89-days", "post-op-rehab") in made and ("surgery-91-days", "post-op-rehab") not in made
    assert ("bmi-30-1", "weight-management") not in made  # already active (recorded by hand)
    assert ("completed-before", "weight-management") in made  # the earlier one is completed
    assert not {pid for pid, _ in made} & {"bmi-30", "consult-only", "cardiac-surgery", "no-history", "bmi-none"}


def test_history_rows_name_the_user_and_the_way_in_like_a_single_evaluation(rf):
    """A run started from the API in the embedded mode writes within the request: its audit rows say who."""
    seed_mock_hospital()
    request = rf.post("/api/v1/evaluations/", REMOTE_ADDR="203.0.113.7")
    request.user = make_user("run-admin", "admin")
    HistoricalRecords.context.request = request
    try:
        assert_set_wise_equals_per_patient()
    finally:
        del HistoricalRecords.context.request
    made = PatientRecommendation.history.filter(history_type="+", source=RecommendationSource.RULE)
    assert set(made.values_list("history_user__username", "history_source", "history_client_address")) == {
        ("run-admin", "api", "203.0.113.7")
    }


def test_a_chunk_costs_the_same_queries_however_many_patients_it_holds(django_assert_num_queries):
    """Set-wise: reads, inserts and the run's figures are a fixed number of queries per chunk, not per patient."""
    seed_mock_hospital()

    def one_chunk() -> tuple[PopulationRun, list[str]]:
        forget_rule_made()
        run, chunks = start_population_run(chunk_size=10_000, at=timezone.now())
        return run, chunks[0]

    run, chunk = one_chunk()
    with CaptureQueriesContext(connection) as small:
        evaluate_chunk(run_id=run.pk, patient_ids=chunk)
    seed_synthetic_patients(count=300, seed=6, procedures=2)
    run, chunk = one_chunk()
    with django_assert_num_queries(len(small)):
        evaluate_chunk(run_id=run.pk, patient_ids=chunk)
    assert PopulationRun.objects.get(pk=run.pk).done == 324
    assert sum(PopulationRun.objects.get(pk=run.pk).counts.values()) > 10  # the synthetic patients got some


def test_a_second_run_records_nothing_new():
    seed_mock_hospital()
    run_population(at=timezone.now())
    before = recorded()
    run = run_population(at=timezone.now())
    assert run.counts == {}
    assert recorded()[1] == before[1]
    assert PatientRecommendation.objects.count() == len(before[0])


def test_new_recommendations_get_pending_events_with_provenance():
    seed_mock_hospital()
    run_population(at=timezone.now(), patient_ids=["108"])
    link = PatientRecommendation.objects.get(patient_id="108", recommendation_id="post-op-rehab")
    assert link.provenance["rule"] == "post_op_rehab" and link.provenance["facts"]
    event = RecommendationEvent.objects.get(patient_recommendation=link)
    assert event.status == EventStatus.PENDING
    assert event.payload["patient_name"] == "Henry Walsh" and event.payload["patient_recommendation"] == link.pk


def test_a_link_made_active_concurrently_is_neither_duplicated_nor_announced(monkeypatch):
    """A write that commits between the chunk's read of active links and its insert: the insert skips it."""
    seed_mock_hospital()
    original = population_module.insert_rows

    def concurrent_writer_first(model, fields, rows, **kwargs):
        if model is PatientRecommendation:
            PatientRecommendationFactory(
                patient_id="105", recommendation_id="weight-management", source=RecommendationSource.MANUAL
            )
        return original(model, fields, rows, **kwargs)

    monkeypatch.setattr(population_module, "insert_rows", concurrent_writer_first)
    run = run_population(at=timezone.now(), patient_ids=["105", "114"])
    links = PatientRecommendation.objects.filter(recommendation_id="weight-management", status="active")
    assert sorted(links.values_list("patient_id", "source")) == [("105", "manual"), ("114", "rule")]
    assert list(RecommendationEvent.objects.values_list("patient_id", flat=True)) == ["114"]
    assert run.counts == {"weight-management": 1}


def test_a_failing_chunk_is_reported_and_writes_nothing_while_the_others_go_on(monkeypatch):
    seed_mock_hospital()
    original = population_module.rule_provenance

    def broken_for_108(*, finding, **kwargs):
        if "age" in finding.facts and finding.facts.get("age") == 78:
            raise RuntimeError("engine fault")
        return original(finding=finding, **kwargs)

    monkeypatch.setattr(population_module, "rule_provenance", broken_for_108)
    run = run_population(at=timezone.now(), chunk_size=2)  # 108 shares its chunk with 107
    assert run.status == PopulationRunStatus.FAILED
    assert [error["patients"] for error in run.errors] == [["107"]]
    assert "engine fault" in run.errors[0]["error"]
    assert run.done == run.total == 24
    assert not PatientRecommendation.objects.filter(patient_id__in=["107", "108"]).exists()
    assert PatientRecommendation.objects.filter(patient_id="105").exists()


# --- the API ------------------------------------------------------------------------------------------------


def test_admin_starts_a_run_and_follows_it_at_its_location(admin_client_jwt, django_capture_on_commit_callbacks):
    seed_mock_hospital()
    with django_capture_on_commit_callbacks(execute=True):  # the chunks are sent once the run is committed
        response = admin_client_jwt.post("/api/v1/evaluations/", {"chunk": 10}, format="json")
    assert response.status_code == 202, response.content
    location = response["Location"]
    assert location.endswith(f"/api/v1/evaluations/{response.json()['id']}/")
    followed = admin_client_jwt.get(location)
    assert followed.status_code == 200
    body = followed.json()
    assert body["status"] == "done"  # embedded: the chunks ran before the answer
    assert body["progress"] == {"done": 24, "total": 24}
    assert body["counts"] == {"physical-therapy": 4, "weight-management": 4, "post-op-rehab": 2}
    assert body["errors"] == [] and body["chunks"] == 3
    assert set(body["timings"]) >= {"read", "evaluate", "write", "total"}


def test_a_run_over_listed_patients_only_touches_them(admin_client_jwt, django_capture_on_commit_callbacks):
    seed_mock_hospital()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_jwt.post("/api/v1/evaluations/", {"patients": ["105", "108"]}, format="json")
    assert response.status_code == 202
    assert response.json()["progress"]["total"] == 2
    assert set(PatientRecommendation.objects.values_list("patient_id", flat=True)) == {"105", "108"}


def test_unknown_patients_or_a_bad_chunk_are_400s_naming_the_field(admin_client_jwt):
    seed_mock_hospital()
    unknown = admin_client_jwt.post("/api/v1/evaluations/", {"patients": ["105", "nobody"]}, format="json")
    assert unknown.status_code == 400
    assert "nobody" in str(unknown.json()) and "patients" in str(unknown.json())
    bad_chunk = admin_client_jwt.post("/api/v1/evaluations/", {"chunk": 0}, format="json")
    assert bad_chunk.status_code == 400 and "chunk" in str(bad_chunk.json())
    assert not PopulationRun.objects.exists()


def test_only_the_admin_role_starts_a_run_but_every_role_follows_it(clinician_client, viewer_client, admin_client_jwt):
    seed_mock_hospital()
    assert clinician_client.post("/api/v1/evaluations/", {}, format="json").status_code == 403
    assert viewer_client.post("/api/v1/evaluations/", {}, format="json").status_code == 403
    run_id = admin_client_jwt.post("/api/v1/evaluations/", {}, format="json").json()["id"]
    assert viewer_client.get(f"/api/v1/evaluations/{run_id}/").status_code == 200
    assert viewer_client.get("/api/v1/evaluations/999999/").status_code == 404


# --- the commands -------------------------------------------------------------------------------------------


def test_evaluate_all_runs_the_population_and_reports_it():
    seed_mock_hospital()
    out = StringIO()
    call_command("evaluate_all", "--chunk", "5", stdout=out, stderr=StringIO())
    assert "24/24 patients" in out.getvalue()
    assert PatientRecommendation.objects.filter(source="rule").count() == 10
    call_command("evaluate_all", "--patients", "105,108", stdout=out, stderr=StringIO())
    assert PopulationRun.objects.first().total == 2


def test_seed_db_adds_reproducible_synthetic_patients_once():
    call_command("seed_db", "--patients", "30", "--seed", "3", stdout=StringIO(), stderr=StringIO())
    first = {
        patient.pk: (patient.name, patient.birth_date, patient.bmi, patient.chronic_pain)
        for patient in Patient.objects.filter(pk__startswith="syn3-")
    }
    histories = PatientProcedure.objects.filter(patient__id__startswith="syn3-").count()
    assert len(first) == 30 and histories > 0
    assert Patient.objects.count() == 24 + 30
    out = StringIO()
    call_command("seed_db", "--patients", "30", "--seed", "3", stdout=out, stderr=StringIO())
    assert "Added 0 synthetic patients" in out.getvalue()
    assert (
        Patient.objects.count() == 54
        and PatientProcedure.objects.filter(patient__id__startswith="syn3-").count() == histories
    )
    # Same seed, same patients, however they were generated: delete some and regenerate them.
    PatientProcedure.objects.filter(patient__id__startswith="syn3-").delete()
    Patient.objects.filter(pk__startswith="syn3-").delete()
    assert seed_synthetic_patients(count=30, seed=3) == 30
    again = {
        patient.pk: (patient.name, patient.birth_date, patient.bmi, patient.chronic_pain)
        for patient in Patient.objects.filter(pk__startswith="syn3-")
    }
    assert again == first


def test_seed_db_fixes_the_history_length_on_request():
    seed_mock_hospital()
    seed_synthetic_patients(count=10, seed=4, procedures=3)
    assert PatientProcedure.objects.filter(patient__id__startswith="syn4-").count() == 30
    assert PatientRecommendation.objects.count() == 0


def test_synthetic_patients_are_plausible():
    seed_mock_hospital()
    seed_synthetic_patients(count=200, seed=5)
    for patient in Patient.objects.filter(pk__startswith="syn5-"):
        assert patient.age is None or 18 <= patient.age <= 95
        assert patient.bmi is None or 14 <= patient.bmi <= 55
    assert not PatientProcedure.objects.filter(performed_at__gt=timezone.now()).exists()
