"""Concurrent evaluations never duplicate a recommendation: real threads against the real database.

The patient row lock queues concurrent evaluations of one patient; behind it, a partial unique constraint
allows one active link per patient and recommendation. The threaded tests need PostgreSQL (SQLite has no row
locks and its in-memory test database refuses concurrent writers), so they run in the PostgreSQL pass of CI
(DATABASE_URL=postgres://...); the constraint test runs on both databases.

Every transactional test here (and in test_events_integration.py) uses `serialized_rollback`: its flush then
leaves the content types alone, and the next test gets the roles and definitions the migrations created.
Mixing in a transactional test without it makes the next serialized one fail on a duplicate content type.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

import pytest
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from patients.tests.factories import PatientFactory
from procedures.tests.factories import PatientProcedureFactory
from recommendations.definitions import STANDARD_DEFINITIONS
from recommendations.models import PatientRecommendation, PopulationRun, Recommendation, RecommendationEvent
from recommendations.services import Evaluation, evaluate_chunk, evaluate_patient, start_population_run
from recommendations.tests.factories import PatientRecommendationFactory

THREADS = 8
JOIN_TIMEOUT_SECONDS = 60

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks; runs in the PostgreSQL pass"
)


def every_rule_patient():
    """A patient for whom all three rules fire."""
    patient = PatientFactory(birth_date=date(timezone.localdate().year - 80, 1, 1), chronic_pain=True, bmi=34.0)
    PatientProcedureFactory(patient=patient)  # a recent orthopaedic surgery
    return patient


def run_at_once(work: list[Callable[[], Evaluation]]) -> list[Evaluation]:
    """Run each callable in its own thread, all released together; re-raise the first error of any thread."""
    barrier = threading.Barrier(len(work))
    results: list[Evaluation] = []
    errors: list[BaseException] = []

    def run(job: Callable[[], Evaluation]) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            results.append(job())
        except BaseException as exc:  # noqa: BLE001 - reported in the main thread below
            errors.append(exc)
        finally:
            connection.close()  # this thread's own connection; the test database is dropped at the end

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "an evaluation thread is still running"
    if errors:
        raise errors[0]
    return results


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_evaluations_of_one_patient_make_each_recommendation_once():
    patient = every_rule_patient()

    evaluations = run_at_once([lambda: evaluate_patient(patient_id=patient.pk)] * THREADS)

    assert len(evaluations) == THREADS
    active = PatientRecommendation.objects.filter(patient=patient, status="active")
    assert sorted(active.values_list("recommendation_id", flat=True)) == sorted(s.id for s in STANDARD_DEFINITIONS)
    assert RecommendationEvent.objects.filter(patient_id=patient.pk).count() == 3
    new = [item for evaluation in evaluations for item in evaluation.recommendations if item.new]
    assert len(new) == 3
    assert {item.patient_recommendation for item in new} == set(active.values_list("pk", flat=True))
    assert all(len(evaluation.recommendations) == 3 for evaluation in evaluations)
    # Published after each commit and consumed eagerly: one e-mail per recommendation, none twice.
    assert set(RecommendationEvent.objects.filter(patient_id=patient.pk).values_list("status", flat=True)) == {
        "consumed"
    }
    assert len(mail.outbox) == 3


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_first_evaluations_on_a_database_without_definitions_create_each_definition_once():
    Recommendation.objects.all().delete()
    patients = [PatientFactory(bmi=34.0) for _ in range(THREADS)]

    evaluations = run_at_once([lambda patient=patient: evaluate_patient(patient_id=patient.pk) for patient in patients])

    assert (
        sorted(item.recommendation for evaluation in evaluations for item in evaluation.recommendations)
        == ["weight-management"] * THREADS
    )
    assert list(Recommendation.objects.values_list("id", "rule")) == [("weight-management", "weight_management")]
    assert PatientRecommendation.objects.filter(status="active").count() == THREADS


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_population_runs_racing_single_evaluations_make_each_recommendation_once_with_its_event_and_history():
    ids = sorted(every_rule_patient().pk for _ in range(12))
    runs = [start_population_run(chunk_size=len(ids))[0] for _ in range(2)]

    run_at_once(
        [lambda run=run: evaluate_chunk(run_id=run.pk, patient_ids=ids) for run in runs]
        + [lambda patient_id=patient_id: evaluate_patient(patient_id=patient_id) for patient_id in ids[::3]]
    )

    active = set(PatientRecommendation.objects.filter(status="active").values_list("pk", flat=True))
    assert len(active) == len(ids) * 3
    events = list(RecommendationEvent.objects.values_list("patient_recommendation_id", flat=True))
    assert sorted(events) == sorted(active)  # one event per link, none for a link another writer made
    created = list(PatientRecommendation.history.filter(history_type="+").values_list("id", flat=True))
    assert sorted(created) == sorted(active)  # one audit row per link
    runs = PopulationRun.objects.filter(pk__in=[run.pk for run in runs])
    assert all(run.status == "done" and not run.errors for run in runs)


@pytest.mark.django_db
def test_database_rejects_a_second_active_link_for_the_same_patient_and_recommendation():
    first = PatientRecommendationFactory(status="active")

    with pytest.raises(IntegrityError), transaction.atomic():
        PatientRecommendation.objects.create(
            patient=first.patient, recommendation=first.recommendation, status="active", source="rule"
        )

    assert PatientRecommendation.objects.filter(patient=first.patient).count() == 1


@pytest.mark.django_db
def test_database_accepts_a_new_active_link_beside_closed_ones():
    first = PatientRecommendationFactory(status="completed")
    PatientRecommendationFactory(patient=first.patient, recommendation=first.recommendation, status="dismissed")

    PatientRecommendation.objects.create(patient=first.patient, recommendation=first.recommendation, status="active")

    assert PatientRecommendation.objects.filter(patient=first.patient).count() == 3
