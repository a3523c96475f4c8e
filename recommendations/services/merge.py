"""Patient merge: fold a duplicate patient (the source) into the record that stays (the target).

It lives here because a merge moves what three apps own — the procedure history (procedures), the
recommendation links and their events (recommendations) and the patient itself (patients) — and
`recommendations` is the app already allowed to import the other two (patients and procedures never import
recommendations). The patients app owns the tombstone (`Patient.merged_into`), the 410 answer and the merge
record (`PatientMerge`); this module owns the orchestration.

One transaction, both patient rows locked in id order (so two merges of the same pair, in either direction,
queue up instead of deadlocking: the second finds a tombstone and gets 409). Rows move with `save()`, so the
audit trail records each moved row with the merging user and the read cache is told; the events' copied
patient ids move with one UPDATE (events are not audited; their cache version is bumped by hand).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from clinrec.cache import bump_versions
from clinrec.exceptions import Conflict
from patients.models import Patient, PatientMerge, Sex
from procedures.models import PatientProcedure
from recommendations.models import PatientRecommendation, RecommendationEvent, RecommendationStatus

# Demographic fields the target takes from the source when its own is empty; a value is never overwritten.
DEMOGRAPHIC_FIELDS = ("birth_date", "sex", "height_cm", "weight_kg", "bmi", "email")


@dataclass
class MergePlan:
    """What a merge of `source` into `target` does: ids per kind of record, and the fields it fills."""

    source: Patient
    target: Patient
    moved_procedures: list[int] = field(default_factory=list)
    collapsed_procedures: list[int] = field(default_factory=list)  # source rows dropped: the target has them
    moved_recommendations: list[int] = field(default_factory=list)
    collapsed_recommendations: list[int] = field(default_factory=list)  # links marked `merged`
    events: list[int] = field(default_factory=list)
    demographics: dict[str, Any] = field(default_factory=dict)

    @property
    def moved(self) -> dict[str, Any]:
        return {
            "procedures": self.moved_procedures,
            "recommendations": self.moved_recommendations,
            "events": self.events,
            "demographics": sorted(self.demographics),
        }

    @property
    def collapsed(self) -> dict[str, list[int]]:
        return {"procedures": self.collapsed_procedures, "recommendations": self.collapsed_recommendations}


def _empty(patient: Patient, name: str) -> bool:
    value = getattr(patient, name)
    return value in (None, "") or (name == "sex" and value == Sex.UNKNOWN)


def plan_merge(*, source: Patient, target: Patient) -> MergePlan:
    """What merging `source` into `target` would move and collapse; reads only (the admin's confirmation)."""
    plan = MergePlan(source=source, target=target)
    held = set(PatientProcedure.objects.filter(patient=target).values_list("procedure_id", "performed_at"))
    for row in PatientProcedure.objects.filter(patient=source).order_by("performed_at", "pk"):
        key = (row.procedure_id, row.performed_at)
        (plan.collapsed_procedures if key in held else plan.moved_procedures).append(row.pk)
        held.add(key)
    target_active = {
        link.recommendation_id: link
        for link in PatientRecommendation.objects.filter(patient=target, status=RecommendationStatus.ACTIVE)
    }
    for link in PatientRecommendation.objects.filter(patient=source).order_by("recommended_at", "pk"):
        plan.moved_recommendations.append(link.pk)
        other = target_active.get(link.recommendation_id) if link.status == RecommendationStatus.ACTIVE else None
        if other is not None:
            # Two active links to one programme: the older stays active, the other is marked `merged`.
            # On a tie the target's own link stays.
            newer = link if link.recommended_at >= other.recommended_at else other
            plan.collapsed_recommendations.append(newer.pk)
            if newer is other:
                target_active[link.recommendation_id] = link
    plan.events = list(
        RecommendationEvent.objects.filter(patient_id=source.pk).order_by("pk").values_list("pk", flat=True)
    )
    plan.demographics = {
        name: getattr(source, name) for name in DEMOGRAPHIC_FIELDS if _empty(target, name) and not _empty(source, name)
    }
    return plan


def _lock_pair(target_id: str, source_id: str) -> tuple[Patient, Patient]:
    """Both rows locked in id order (deterministic: concurrent merges of one pair queue, never deadlock)."""
    locked = {}
    for pk in sorted({target_id, source_id}):
        patient = Patient.objects.select_for_update().filter(pk=pk).first()
        if patient is None:
            role = "target" if pk == target_id else "source"
            raise Http404(f"No patient with id {pk!r} (the merge {role}).")
        locked[pk] = patient
    return locked[target_id], locked[source_id]


@transaction.atomic
def merge_patients(*, target_id: str, source_id: str, merged_by: Any = None) -> PatientMerge:
    """Merge patient `source_id` into `target_id`: move its history, collapse duplicates, leave a tombstone.

    Raises ValidationError (400) for a self-merge, Http404 for an unknown id, Conflict (409) when either
    patient is already a tombstone (this is also what the loser of two concurrent merges of a pair gets).
    """
    if source_id == target_id:
        raise ValidationError({"source": ["A patient cannot be merged into itself."]})
    target, source = _lock_pair(target_id, source_id)
    for patient, role in ((source, "source"), (target, "target")):
        if patient.is_tombstone:
            raise Conflict(
                f"The {role} patient '{patient.pk}' was already merged into '{patient.merged_into_id}'; "
                "merge into (or from) that record instead."
            )
    plan = plan_merge(source=source, target=target)
    _move_procedures(plan)
    _move_recommendations(plan)
    _move_events(plan)
    if plan.demographics:
        for name, value in plan.demographics.items():
            setattr(target, name, value)
        target.save()
    source.merged_into = target
    source.save(update_fields=["merged_into", "updated_at"])
    return PatientMerge.objects.create(
        source=source,
        target=target,
        merged_by=merged_by if getattr(merged_by, "pk", None) else None,
        merged_at=timezone.now(),
        moved=plan.moved,
        collapsed=plan.collapsed,
    )


def _move_procedures(plan: MergePlan) -> None:
    collapsed = set(plan.collapsed_procedures)
    for row in PatientProcedure.objects.filter(patient=plan.source):
        if row.pk in collapsed:
            row.delete()  # the target holds the same procedure at the same instant
        else:
            row.patient = plan.target
            row.save(update_fields=["patient"])


def _move_recommendations(plan: MergePlan) -> None:
    # Collapsed links are marked first, so the one-active-link-per-programme constraint holds at every step.
    for link in PatientRecommendation.objects.filter(pk__in=plan.collapsed_recommendations):
        link.status = RecommendationStatus.MERGED
        link.save(update_fields=["status"])
    for link in PatientRecommendation.objects.filter(patient=plan.source):
        link.patient = plan.target
        link.save(update_fields=["patient"])


def _move_events(plan: MergePlan) -> None:
    if plan.events:
        RecommendationEvent.objects.filter(pk__in=plan.events).update(patient_id=plan.target.pk)
        bump_versions(RecommendationEvent)
