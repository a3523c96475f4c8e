"""Reads with a business meaning: the patient snapshots the engine evaluates (one, or the whole population in a
few queries), rule sets, events, analytics."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from operator import itemgetter

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from clinrec.bulk import stored_ids
from patients.models import Patient
from patients.selectors import live_patients
from procedures.models import PatientProcedure
from recommendations.engine import PatientSnapshot, ProcedureFact
from recommendations.models import Recommendation, RecommendationDailyCount, RecommendationEvent, RuleSet


def patient_snapshot(*, patient: Patient) -> PatientSnapshot:
    """The facts the engine reads about `patient`, with its whole procedure history in one query."""
    history = PatientProcedure.objects.filter(patient=patient).select_related("procedure").order_by("-performed_at")
    return PatientSnapshot(
        patient_id=patient.pk,
        birth_date=patient.birth_date,
        bmi=patient.bmi,
        chronic_pain=patient.chronic_pain,
        procedures=tuple(
            ProcedureFact(
                name=item.procedure.name,
                department=item.procedure.department,
                is_surgery=item.procedure.is_surgery,
                performed_at=item.performed_at,
                procedure_id=item.procedure_id,
                patient_procedure_id=item.pk,
            )
            for item in history
        ),
    )


def population_snapshots(*, patient_ids: list[str] | None = None, chunk_size: int = 2000) -> Iterator[PatientSnapshot]:
    """A snapshot of every patient (or of `patient_ids`, ids as stored, such as a run's chunk), for set-wise
    evaluation: one query, streamed (never one per patient).

    Patients are joined to their whole procedure history (a left join: one row per history entry, one row of
    nulls for a patient without history), ordered by patient, and grouped in Python; memory stays bounded by
    the driver's chunk.
    """
    patients = live_patients() if patient_ids is None else live_patients().filter(pk__in=stored_ids(patient_ids))
    rows = (
        # Tombstones of a merge are not patients any more: their history lives on the target.
        patients.order_by("pk", "-procedures__performed_at", "-procedures__pk")
        .values_list(
            "pk",
            "birth_date",
            "bmi",
            "chronic_pain",
            "procedures__pk",
            "procedures__procedure_id",
            "procedures__procedure__name",
            "procedures__procedure__department",
            "procedures__procedure__is_surgery",
            "procedures__performed_at",
        )
        .iterator(chunk_size=chunk_size)
    )
    for patient_id, group in groupby(rows, key=itemgetter(0)):
        entries = list(group)
        _, birth_date, bmi, chronic_pain = entries[0][:4]
        facts = tuple(
            ProcedureFact(
                name=name,
                department=department,
                is_surgery=is_surgery,
                performed_at=performed_at,
                procedure_id=procedure_id,
                patient_procedure_id=link_id,
            )
            for link_id, procedure_id, name, department, is_surgery, performed_at in (entry[4:] for entry in entries)
            if link_id is not None
        )
        yield PatientSnapshot(
            patient_id=patient_id, birth_date=birth_date, bmi=bmi, chronic_pain=chronic_pain, procedures=facts
        )


def rule_set_list() -> QuerySet[RuleSet]:
    return RuleSet.objects.select_related("created_by", "activated_by").order_by("-version")


def event_list() -> QuerySet[RecommendationEvent]:
    """Events, each with its deliveries (one query for all of a page's)."""
    return RecommendationEvent.objects.prefetch_related("deliveries")


def recommendation_counts() -> QuerySet[RecommendationDailyCount]:
    """Counts per recommendation and day, named as the definition is named now (the name at the time if gone)."""
    current_name = Recommendation.objects.filter(pk=OuterRef("recommendation_id")).values("name")[:1]
    return RecommendationDailyCount.objects.annotate(current_name=Coalesce(Subquery(current_name), F("name")))


def unknown_patient_ids(patient_ids: list[str]) -> list[str]:
    """The ids in `patient_ids` that name no patient, sorted."""
    known = set(Patient.objects.filter(pk__in=set(patient_ids)).values_list("pk", flat=True))
    return sorted(set(patient_ids) - known)
