"""No lost update on patient recommendations: a status change and a reason edit made at once both stay.

Needs PostgreSQL's row locks and concurrent writers, so it runs in the PostgreSQL pass of CI; see
patients/tests/test_concurrent_updates.py for the patient (height, weight and BMI) race.
"""

from __future__ import annotations

import pytest
from django.db import connection

from clinrec.tests.races import patch_in_pairs
from conftest import make_user
from recommendations.models import PatientRecommendation
from recommendations.tests.factories import PatientRecommendationFactory
from security.roles import CLINICIAN

ROUNDS = 100
NEW_REASON = "Declined at follow-up; reassess in three months."

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks; runs in the PostgreSQL pass"
)


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_status_and_reason_patches_both_apply():
    links = PatientRecommendationFactory.create_batch(ROUNDS, status="active", reason="Ward round decision.")
    ids = [link.pk for link in links]

    outcome = patch_in_pairs(
        user=make_user("racing-clinician", CLINICIAN),
        urls=[f"/api/v1/patient-recommendations/{pk}/" for pk in ids],
        bodies=(lambda _round: {"status": "completed"}, lambda _round: {"reason": NEW_REASON}),
    )

    assert outcome.statuses == [[200] * ROUNDS, [200] * ROUNDS]
    stored = dict(PatientRecommendation.objects.filter(pk__in=ids).values_list("pk", "status"))
    reasons = dict(PatientRecommendation.objects.filter(pk__in=ids).values_list("pk", "reason"))
    lost = [pk for pk in ids if (stored[pk], reasons[pk]) != ("completed", NEW_REASON)]
    print(f"patient recommendations: lost updates: {len(lost)}/{ROUNDS}")
    assert lost == []
