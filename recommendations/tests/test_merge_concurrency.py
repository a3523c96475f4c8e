"""Concurrent merges of one pair, in both directions: exactly one wins, the others get 409, nothing is corrupted.

Real threads against PostgreSQL (row locks); like test_concurrency.py it runs in the PostgreSQL pass and uses
`serialized_rollback` so the next tests keep the roles and definitions the migrations created.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from clinrec.exceptions import Conflict
from patients.models import Patient, PatientMerge
from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import PatientProcedureFactory
from recommendations.models import PatientRecommendation
from recommendations.services import merge_patients
from recommendations.tests.factories import PatientRecommendationFactory, RecommendationFactory

THREADS = 6
JOIN_TIMEOUT_SECONDS = 60

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks; runs in the PostgreSQL pass"
)


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_merges_of_one_pair_one_wins_the_others_get_409():
    a, b = PatientFactory(id="pair-a"), PatientFactory(id="pair-b")
    programme = RecommendationFactory()
    for patient in (a, b):
        PatientProcedureFactory.create_batch(3, patient=patient)
        PatientRecommendationFactory(patient=patient, recommendation=programme)
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def merge(target: str, source: str) -> None:
        try:
            barrier.wait(timeout=JOIN_TIMEOUT_SECONDS)
            with transaction.atomic():  # as a request would: the locks last until the commit
                merge_patients(target_id=target, source_id=source)
            outcomes.append(f"won {source}->{target}")
        except Conflict:
            outcomes.append("409")
        except BaseException as exc:  # noqa: BLE001 - a deadlock or anything else fails the test below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    # Half the threads merge b into a, half a into b: opposite lock orders would deadlock without the id order.
    threads = [
        threading.Thread(target=merge, args=(("pair-a", "pair-b") if n % 2 else ("pair-b", "pair-a")))
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_SECONDS)

    assert not any(thread.is_alive() for thread in threads), "a merge thread is still running"
    winners = [outcome for outcome in outcomes if outcome.startswith("won")]
    assert len(winners) == 1, outcomes
    assert sorted(outcomes).count("409") == THREADS - 1, outcomes
    merge = PatientMerge.objects.get()
    target, source = merge.target_id, merge.source_id
    assert Patient.objects.get(pk=source).merged_into_id == target
    assert Patient.objects.get(pk=target).merged_into_id is None
    assert PatientProcedure.objects.filter(patient_id=target).count() == 6
    assert not PatientProcedure.objects.filter(patient_id=source).exists()
    links = PatientRecommendation.objects.filter(patient_id=target)
    assert sorted(links.values_list("status", flat=True)) == ["active", "merged"]
