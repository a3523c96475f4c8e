"""Reads with a business meaning: the patient snapshot the engine evaluates, events, analytics."""

from __future__ import annotations

from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from patients.models import Patient
from procedures.models import PatientProcedure
from recommendations.engine import PatientSnapshot, ProcedureFact
from recommendations.models import Recommendation, RecommendationDailyCount, RecommendationEvent


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
            )
            for item in history
        ),
    )


def event_list() -> QuerySet[RecommendationEvent]:
    return RecommendationEvent.objects.all()


def recommendation_counts() -> QuerySet[RecommendationDailyCount]:
    """Counts per recommendation and day, named as the definition is named now (the name at the time if gone)."""
    current_name = Recommendation.objects.filter(pk=OuterRef("recommendation_id")).values("name")[:1]
    return RecommendationDailyCount.objects.annotate(current_name=Coalesce(Subquery(current_name), F("name")))
