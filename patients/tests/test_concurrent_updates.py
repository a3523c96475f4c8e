"""No lost update on patients: two clients PATCHing height and weight at once both keep their change.

Each PATCH locks the row, reads it under the lock and writes only the columns it changes, so the second
PATCH sees the first one's measurement and derives the BMI from both. The race needs PostgreSQL's row locks
and concurrent writers, so it runs in the PostgreSQL pass of CI (DATABASE_URL=postgres://...), like the
concurrent evaluations in recommendations/tests/test_concurrency.py; the columns an update writes are
checked on both databases.

Run it alone with the figure printed:
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python -m pytest -s -p no:cacheprovider \
        patients/tests/test_concurrent_updates.py
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinrec.tests.races import patch_in_pairs
from conftest import client_for, make_user
from patients.models import Patient
from patients.services import compute_bmi
from patients.tests.factories import PatientFactory
from security.roles import CLINICIAN

ROUNDS = 100
HEIGHT_CM = 180.0
WEIGHT_KG = 120.0

needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL row locks; runs in the PostgreSQL pass"
)


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_height_and_weight_patches_both_apply_and_bmi_follows_the_stored_measurements():
    patients = PatientFactory.create_batch(ROUNDS, height_cm=170.0, weight_kg=70.0, bmi=24.2)
    ids = [patient.pk for patient in patients]

    outcome = patch_in_pairs(
        user=make_user("racing-clinician", CLINICIAN),
        urls=[f"/api/v1/patients/{patient_id}/" for patient_id in ids],
        bodies=(lambda _round: {"height_cm": HEIGHT_CM}, lambda _round: {"weight_kg": WEIGHT_KG}),
    )

    assert outcome.statuses == [[200] * ROUNDS, [200] * ROUNDS]
    stored = {row.pk: row for row in Patient.objects.filter(pk__in=ids)}
    lost = [pk for pk in ids if (stored[pk].height_cm, stored[pk].weight_kg) != (HEIGHT_CM, WEIGHT_KG)]
    inconsistent = [
        pk
        for pk in ids
        if stored[pk].bmi != compute_bmi(height_cm=stored[pk].height_cm, weight_kg=stored[pk].weight_kg)
    ]
    print(
        f"patients: lost updates: {len(lost)}/{ROUNDS}, BMI inconsistent with the stored measurements: "
        f"{len(inconsistent)}/{ROUNDS}"
    )
    assert lost == []
    assert inconsistent == []
    # Each client was answered with its own change in place (the second one also shows the first's).
    assert all(body["height_cm"] == HEIGHT_CM for body in outcome.bodies[0])
    assert all(body["weight_kg"] == WEIGHT_KG for body in outcome.bodies[1])


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_edits_of_the_same_version_at_once_one_applies_and_the_other_is_412():
    """If-Match is compared under the row lock: both cannot pass the check before either writes."""
    rounds = ROUNDS // 2
    ids = [patient.pk for patient in PatientFactory.create_batch(rounds, name="Original")]
    user = make_user("racing-clinician", CLINICIAN)
    reader = client_for(user)
    etags = [reader.get(f"/api/v1/patients/{patient_id}/")["ETag"] for patient_id in ids]

    outcome = patch_in_pairs(
        user=user,
        urls=[f"/api/v1/patients/{patient_id}/" for patient_id in ids],
        bodies=(lambda _round: {"name": "First editor"}, lambda _round: {"name": "Second editor"}),
        headers=(lambda round_number: {"If-Match": etags[round_number]},) * 2,
    )

    names = dict(Patient.objects.filter(pk__in=ids).values_list("pk", "name"))
    for round_number, patient_id in enumerate(ids):
        statuses = sorted(outcome.statuses[racer][round_number] for racer in (0, 1))
        assert statuses == [200, 412], (patient_id, statuses)
        winner = 0 if outcome.statuses[0][round_number] == 200 else 1
        assert names[patient_id] == outcome.bodies[winner][round_number]["name"]


def updated_patient_columns(queries: CaptureQueriesContext) -> list[set[str]]:
    """The columns each UPDATE of the patient table wrote, from the SQL that ran."""
    return [
        set(re.findall(r'"(\w+)" = ', re.search(r" SET (.*) WHERE ", query["sql"]).group(1)))
        for query in queries.captured_queries
        if query["sql"].startswith('UPDATE "patients_patient"')
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "columns"),
    [
        ({"name": "Ada Lovelace"}, {"name", "updated_at"}),
        ({"height_cm": HEIGHT_CM}, {"height_cm", "bmi", "updated_at"}),
        ({"weight_kg": WEIGHT_KG, "chronic_pain": True}, {"weight_kg", "bmi", "chronic_pain", "updated_at"}),
    ],
)
def test_patch_writes_only_the_columns_it_changes(clinician_client, body, columns):
    PatientFactory(id="108", height_cm=170.0, weight_kg=70.0, bmi=24.2)

    with CaptureQueriesContext(connection) as queries:
        response = clinician_client.patch("/api/v1/patients/108/", body, format="json")

    assert response.status_code == 200, response.data
    assert updated_patient_columns(queries) == [columns]
