"""Bulk inserts (`insert_rows`) on either database: conflicts are skipped and only the rows inserted come back,
and the values stored read back as the ORM would have stored them."""

from __future__ import annotations

import pytest
from django.utils import timezone

from clinrec.bulk import db_value, insert_rows, json_text, stored_ids
from patients.models import Patient
from patients.tests.factories import PatientFactory
from recommendations.models import PatientRecommendation, RecommendationStatus
from recommendations.tests.factories import RecommendationFactory

pytestmark = pytest.mark.django_db

FIELDS = ["patient", "recommendation", "recommended_at", "source", "reason", "status", "provenance"]


def row(patient, definition, *, at, reason="why"):
    to_json = json_text(PatientRecommendation, "provenance")
    stored_at = db_value(PatientRecommendation, "recommended_at", at)
    return (patient.pk, definition.pk, stored_at, "rule", reason, "active", to_json({"rule": "r", "facts": {"n": 1}}))


def test_insert_rows_skips_a_conflicting_row_and_returns_only_the_rows_inserted():
    at = timezone.now()
    first, second = PatientFactory(), PatientFactory()
    definition = RecommendationFactory()
    existing = PatientRecommendation.objects.create(patient=first, recommendation=definition)  # active already

    inserted = insert_rows(
        PatientRecommendation,
        FIELDS,
        [row(first, definition, at=at), row(second, definition, at=at, reason="new one")],
        returning=["id", "patient"],
    )

    assert [patient_id for _, patient_id in inserted] == [second.pk]
    link = PatientRecommendation.objects.get(pk=inserted[0][0])
    assert (link.patient_id, link.reason, link.status, link.recommended_at) == (
        second.pk,
        "new one",
        RecommendationStatus.ACTIVE,
        at,
    )
    assert link.provenance == {"rule": "r", "facts": {"n": 1}}
    assert PatientRecommendation.objects.filter(patient=first).get() == existing


def test_insert_rows_without_returning_inserts_everything_and_returns_nothing():
    at = timezone.now()
    definition = RecommendationFactory()
    patients = PatientFactory.create_batch(3)
    assert insert_rows(PatientRecommendation, FIELDS, [row(patient, definition, at=at) for patient in patients]) == []
    assert PatientRecommendation.objects.count() == 3
    assert insert_rows(PatientRecommendation, FIELDS, []) == []


def test_stored_ids_select_what_the_plain_list_selects():
    patients = PatientFactory.create_batch(4)
    wanted = sorted(patient.pk for patient in patients[:3])
    assert sorted(Patient.objects.filter(pk__in=stored_ids(wanted)).values_list("pk", flat=True)) == wanted
    assert not Patient.objects.filter(pk__in=stored_ids([])).exists()
