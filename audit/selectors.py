"""The history of one patient's record: the patient, its procedure history and its recommendations.

Three historical tables, read as one list newest first: a UNION of (date, kind, history id) is what is
counted and paginated, then the page's records are fetched per kind, each with its previous version so that
every entry says which fields changed, old and new. A row that moved here in a merge brings its whole history.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Q, QuerySet, Value

from patients.models import Patient
from procedures.models import PatientProcedure
from recommendations.models import PatientRecommendation

ACTIONS = {"+": "created", "~": "updated", "-": "deleted"}
# Bookkeeping fields that change on every save and say nothing a reader needs.
IGNORED_FIELDS = {"updated_at"}


def _histories() -> dict[str, Any]:
    return {
        "patient": Patient.history.model,
        "patient_procedure": PatientProcedure.history.model,
        "patient_recommendation": PatientRecommendation.history.model,
    }


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    model: str
    object_id: str
    action: str
    at: Any
    user: str | None
    source: str
    client_address: str | None
    changes: list[Change]


def _belonging(model, patient_id: str) -> Q:
    if model is Patient.history.model:
        return Q(id=patient_id)
    # Every version of each row that ever belonged to the patient (a merge moves rows in from another).
    ever = model.objects.filter(patient_id=patient_id).values("id")
    return Q(id__in=ever)


def patient_history_index(*, patient_id: str) -> QuerySet:
    """(at, model, history_id) of every change of the patient's record, newest first; countable and sliceable."""
    parts = [
        model.objects.filter(_belonging(model, patient_id))
        .annotate(kind=Value(kind, output_field=CharField()))
        .values_list("history_date", "kind", "history_id")
        .order_by()
        for kind, model in _histories().items()
    ]
    return parts[0].union(*parts[1:], all=True).order_by("-history_date", "-history_id")


def _changes(record, previous) -> list[Change]:
    fields = [f.attname for f in record.instance_type._meta.concrete_fields]
    if record.history_type == "-":
        return []
    changes = []
    for name in fields:
        if name in IGNORED_FIELDS:
            continue
        new = getattr(record, name, None)
        old = getattr(previous, name, None) if previous is not None else None
        if previous is None and new in (None, "", {}, []):
            continue
        if previous is None or old != new:
            changes.append(Change(field=name, old=old, new=new))
    return changes


def history_entries(page: list[tuple]) -> list[HistoryEntry]:
    """The full entries of one page of `patient_history_index`: one query per kind for the records and their
    earlier versions (never one per entry)."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for _, kind, history_id in page:
        by_kind[kind].append(history_id)
    histories = _histories()
    records: dict[tuple[str, int], Any] = {}
    previous: dict[tuple[str, int], Any] = {}
    for kind, ids in by_kind.items():
        model = histories[kind]
        chosen = list(model.objects.filter(history_id__in=ids).select_related("history_user"))
        object_ids = {record.id for record in chosen}
        latest = max(record.history_date for record in chosen)
        versions: dict[Any, list] = defaultdict(list)
        for version in model.objects.filter(id__in=object_ids, history_date__lte=latest).order_by(
            "history_date", "history_id"
        ):
            versions[version.id].append(version)
        for record in chosen:
            records[(kind, record.history_id)] = record
            earlier = [
                v
                for v in versions[record.id]
                if (v.history_date, v.history_id) < (record.history_date, record.history_id)
            ]
            previous[(kind, record.history_id)] = earlier[-1] if earlier else None
    entries = []
    for _, kind, history_id in page:
        record = records[(kind, history_id)]
        user = record.history_user
        entries.append(
            HistoryEntry(
                id=history_id,
                model=kind,
                object_id=str(record.id),
                action=ACTIONS[record.history_type],
                at=record.history_date,
                user=user.get_username() if user is not None else None,
                source=record.history_source,
                client_address=record.history_client_address,
                changes=_changes(record, previous[(kind, history_id)]),
            )
        )
    return entries
