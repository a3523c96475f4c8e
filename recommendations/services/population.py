"""Evaluating a whole population set-wise: the same plan as `evaluate_patient`, for thousands of patients at once.

A run (`PopulationRun`) fixes the instant and the rule-set version, lists its patients and splits them into
chunks; each chunk is a Celery task (`recommendations.population_tasks`), so workers on more machines share a
run; embedded (eager Celery) the chunks run in-process one after the other. A chunk, in one transaction:

1. locks its patients' rows (PostgreSQL; SQLite's IMMEDIATE transaction holds the write lock anyway), so a
   concurrent `evaluate_patient` of one of them waits for the chunk, or the chunk for it;
2. reads their snapshots and their active recommendations in bulk (`population_snapshots`, one query each);
3. runs the pure engine over the snapshots in memory and keeps, per patient and definition, what is new;
4. inserts the new links (with provenance) with `insert_rows`, skipping a link that a concurrent write made
   active meanwhile (the partial unique index holds) and getting back the ids of those actually inserted;
   then, for exactly those, their audit history rows (what django-simple-history writes on a create) and
   their outbox events (`pending`, published later by the relay);
5. bumps the cache versions (bulk writes send no signals) and adds its figures to the run, under its row lock.

Findings, definitions, provenance and event payloads come from the same functions `evaluate_patient` uses
(`definitions_for_rules`, `rule_provenance`, `event_payload`), and the history rows' user and origin from
simple-history's and clinrec.history's own hooks, so the two give identical results.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from simple_history.signals import pre_create_historical_record
from simple_history.utils import get_change_reason_from_object

from clinrec.bulk import db_value, insert_rows, json_text, stored_ids
from clinrec.cache import bump_versions
from patients.models import Patient
from recommendations.models import (
    EventStatus,
    PatientRecommendation,
    PopulationRun,
    PopulationRunStatus,
    RecommendationEvent,
    RecommendationSource,
    RecommendationStatus,
    RuleSet,
)
from recommendations.selectors import population_snapshots
from recommendations.services.evaluation import definitions_for_rules, get_engine
from recommendations.services.outbox import event_payload
from recommendations.services.provenance import rule_provenance
from recommendations.services.rule_sets import active_rule_set

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 5000


@transaction.atomic
def start_population_run(
    *,
    patient_ids: list[str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    requested_by=None,
    at: datetime | None = None,
) -> tuple[PopulationRun, list[list[str]]]:
    """Record a run over `patient_ids` (default: every patient) and return it with its chunks of patient ids.

    The caller dispatches the chunks (`run_population` in-process, or the Celery task per chunk). Unknown ids
    in `patient_ids` are reported in the run's errors and not counted.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    ids = Patient.objects.order_by("pk").values_list("pk", flat=True)
    errors = []
    if patient_ids is not None:
        wanted = sorted(set(patient_ids))
        ids = ids.filter(pk__in=wanted)
    ids = list(ids)
    if patient_ids is not None and len(ids) != len(set(patient_ids)):
        unknown = sorted(set(patient_ids) - set(ids))
        errors.append({"patients": unknown, "error": "unknown patient ids"})
    chunks = [ids[start : start + chunk_size] for start in range(0, len(ids), chunk_size)]
    run = PopulationRun.objects.create(
        evaluated_at=at or timezone.now(),
        rule_set=active_rule_set().version,
        patient_ids=patient_ids,
        chunk_size=chunk_size,
        total=len(ids),
        chunks=len(chunks),
        errors=errors,
        requested_by=requested_by if getattr(requested_by, "pk", None) else None,
        status=PopulationRunStatus.QUEUED if chunks else PopulationRunStatus.DONE,
        finished_at=None if chunks else timezone.now(),
    )
    return run, chunks


def dispatch_population_run(*, run: PopulationRun, chunks: list[list[str]]) -> None:
    """Send each chunk to the workers once the run is committed (eager Celery: run them here, in order)."""
    from recommendations.population_tasks import evaluate_population_chunk_task

    def send() -> None:
        for chunk in chunks:
            evaluate_population_chunk_task.delay(run.pk, chunk)

    transaction.on_commit(send)


def evaluate_chunk(*, run_id: int, patient_ids: list[str]) -> bool:
    """Evaluate one chunk of a run and add its figures to the run; a failure is recorded in the run (and the
    chunk's writes rolled back), so the other chunks go on. Returns whether the chunk succeeded."""
    PopulationRun.objects.filter(pk=run_id, started_at__isnull=True).update(
        started_at=timezone.now(), status=PopulationRunStatus.RUNNING
    )
    try:
        _evaluate_chunk(run_id=run_id, patient_ids=patient_ids)
    except Exception as exc:
        logger.exception("Population run %s: chunk starting at %s failed", run_id, patient_ids[:1])
        _record_chunk(
            run_id=run_id,
            done=len(patient_ids),
            counts={},
            timings={},
            error={"patients": patient_ids[:1], "size": len(patient_ids), "error": repr(exc)[:500]},
        )
        return False
    return True


@transaction.atomic
def _evaluate_chunk(*, run_id: int, patient_ids: list[str]) -> None:
    run = PopulationRun.objects.get(pk=run_id)
    at = run.evaluated_at
    rule_set = RuleSet.objects.get(pk=run.rule_set)
    engine = get_engine(rule_set)
    clock = time.perf_counter()

    # 1-2. Lock (reading the names the events quote on the way), then read in bulk.
    names = dict(
        Patient.objects.select_for_update()
        .filter(pk__in=stored_ids(patient_ids))
        .order_by("pk")
        .values_list("pk", "name")
    )
    snapshots = list(population_snapshots(patient_ids=patient_ids))
    read_seconds = time.perf_counter() - clock

    # 3. The pure engine, in memory.
    clock = time.perf_counter()
    findings = {snapshot.patient_id: engine.evaluate(snapshot, at=at) for snapshot in snapshots}
    fired = {finding.rule for found in findings.values() for finding in found}
    definitions = definitions_for_rules(fired, create=True) if fired else {}
    active = set(
        PatientRecommendation.objects.filter(
            patient_id__in=stored_ids(patient_ids),
            status=RecommendationStatus.ACTIVE,
            recommendation__in=[definition.pk for definition in definitions.values()],
        ).values_list("patient_id", "recommendation_id")
    )
    planned: dict[tuple[str, str], tuple[str, dict]] = {}
    for patient_id, found in findings.items():
        for finding in found:
            definition = definitions.get(finding.rule)
            if definition is None or (patient_id, definition.pk) in active:
                continue
            provenance = rule_provenance(finding=finding, rule_set=rule_set.version, engine=engine)
            planned[(patient_id, definition.pk)] = (finding.reason, provenance)
    evaluate_seconds = time.perf_counter() - clock

    # 4. Bulk inserts: links, then the history rows and events of the links actually inserted.
    clock = time.perf_counter()
    counts: Counter[str] = Counter()
    if planned:
        created = _insert_links(planned=planned, at=at)
        now = timezone.now()
        _insert_history(created=created, at=at, now=now)
        _insert_events(
            created=created,
            at=at,
            now=now,
            names=names,
            definitions={definition.pk: definition for definition in definitions.values()},
        )
        counts.update(link.definition_id for link in created)
        if created:
            bump_versions(PatientRecommendation, RecommendationEvent)  # bulk inserts send no signals
    write_seconds = time.perf_counter() - clock

    # 5. The run's figures.
    _record_chunk(
        run_id=run_id,
        done=len(patient_ids),
        counts=counts,
        timings={"read": read_seconds, "evaluate": evaluate_seconds, "write": write_seconds},
        error=None,
    )


class _Created(NamedTuple):
    """A link this chunk inserted, with its provenance as a dict and as JSON text (encoded once, written twice)."""

    pk: int
    patient_id: str
    definition_id: str
    reason: str
    provenance: dict
    stored_provenance: Any


_LINK_FIELDS = ["patient", "recommendation", "recommended_at", "source", "reason", "status", "provenance"]


def _insert_links(*, planned: dict[tuple[str, str], tuple[str, dict]], at: datetime) -> list[_Created]:
    """Insert the planned links; return those inserted, by id. A link a concurrent write made active meanwhile
    is skipped by the partial unique index, and `RETURNING` leaves it out, so nothing else announces it."""
    stored_at = connection.ops.adapt_datetimefield_value(at)
    to_json = json_text(PatientRecommendation, "provenance")
    stored = {key: to_json(provenance) for key, (_, provenance) in planned.items()}
    inserted = insert_rows(
        PatientRecommendation,
        _LINK_FIELDS,
        (
            (
                patient_id,
                definition_id,
                stored_at,
                RecommendationSource.RULE.value,
                reason,
                RecommendationStatus.ACTIVE.value,
                stored[(patient_id, definition_id)],
            )
            for (patient_id, definition_id), (reason, _) in planned.items()
        ),
        returning=["id", "patient", "recommendation"],
    )
    created = []
    for pk, patient_id, definition_id in sorted(inserted):
        reason, provenance = planned[(patient_id, definition_id)]
        created.append(_Created(pk, patient_id, definition_id, reason, provenance, stored[(patient_id, definition_id)]))
    return created


def _insert_history(*, created: list[_Created], at: datetime, now: datetime) -> None:
    """The audit rows `PatientRecommendation.objects.create` would write (django-simple-history), in bulk.

    Who and where (user, change reason, and clinrec.history's source and client address) come from the context
    the same way for every link of the chunk, so they are worked out once, on a probe record, by simple-history
    and the project's own signal receivers.
    """
    if not created or not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return
    history_model = PatientRecommendation.history.model
    probe_link = PatientRecommendation()
    probe = history_model(
        history_date=now,
        history_type="+",
        history_user=history_model.get_default_history_user(probe_link),
        history_change_reason=get_change_reason_from_object(probe_link),
    )
    pre_create_historical_record.send(
        sender=history_model,
        instance=probe_link,
        history_date=now,
        history_user=probe.history_user,
        history_change_reason=probe.history_change_reason,
        history_instance=probe,
        using=None,
    )
    origin = {
        name: db_value(history_model, name, getattr(probe, history_model._meta.get_field(name).attname))
        for name in [
            "history_date",
            "history_type",
            "history_user",
            "history_change_reason",
            "history_source",
            "history_client_address",
        ]
    }
    tracked = [field.attname for field in history_model.tracked_fields]
    stored_at = connection.ops.adapt_datetimefield_value(at)
    rows = []
    for link in created:
        values = {
            "id": link.pk,
            "patient_id": link.patient_id,
            "recommendation_id": link.definition_id,
            "recommended_at": stored_at,
            "source": RecommendationSource.RULE.value,
            "reason": link.reason,
            "status": RecommendationStatus.ACTIVE.value,
            "provenance": link.stored_provenance,
        }
        rows.append([values[name] for name in tracked] + list(origin.values()))
    insert_rows(history_model, tracked + list(origin), rows)


_EVENT_FIELDS = [
    "event_type",
    "patient_id",
    "recommendation_id",
    "patient_recommendation",
    "payload",
    "status",
    "attempts",
    "last_error",
    "created_at",
    "publish_count",
]


def _insert_events(
    *, created: list[_Created], at: datetime, now: datetime, names: dict[str, str], definitions: dict
) -> None:
    """The outbox events of the links inserted, pending for the relay, with `announce_recommendation`'s payload."""
    recommended_at = at.isoformat()
    created_at = connection.ops.adapt_datetimefield_value(now)
    to_json = json_text(RecommendationEvent, "payload")
    insert_rows(
        RecommendationEvent,
        _EVENT_FIELDS,
        (
            (
                RecommendationEvent.TYPE_CREATED,
                link.patient_id,
                link.definition_id,
                link.pk,
                to_json(
                    event_payload(
                        patient_id=link.patient_id,
                        patient_name=names[link.patient_id],
                        definition=definitions[link.definition_id],
                        source=RecommendationSource.RULE.value,
                        reason=link.reason,
                        link_id=link.pk,
                        recommended_at=recommended_at,
                        provenance=link.provenance,
                    ),
                ),
                EventStatus.PENDING.value,
                0,
                "",
                created_at,
                0,
            )
            for link in created
        ),
    )


@transaction.atomic
def _record_chunk(*, run_id: int, done: int, counts, timings: dict, error: dict | None) -> None:
    run = PopulationRun.objects.select_for_update().get(pk=run_id)
    for definition_id, count in counts.items():
        run.counts[definition_id] = run.counts.get(definition_id, 0) + count
    for name, seconds in timings.items():
        run.timings[name] = round(run.timings.get(name, 0.0) + seconds, 3)
    if error is not None:
        run.errors.append(error)
    run.done += done
    run.chunks_done += 1
    if run.started_at is None:
        run.started_at = timezone.now()
    if run.chunks_done >= run.chunks:
        run.status = PopulationRunStatus.FAILED if any("size" in e for e in run.errors) else PopulationRunStatus.DONE
        run.finished_at = timezone.now()
        run.timings["total"] = round((run.finished_at - run.started_at).total_seconds(), 3)
    else:
        run.status = PopulationRunStatus.RUNNING
    run.save(
        update_fields=["counts", "timings", "errors", "done", "chunks_done", "status", "started_at", "finished_at"]
    )
