"""Celery task of set-wise population evaluation: one chunk of a run per task. Thin: it calls the service.

Kept beside `tasks.py` (listed in CELERY_IMPORTS) while another branch rebuilds that module; the lead may move
it there on merge.
"""

from __future__ import annotations

from celery import shared_task

from recommendations.services.population import evaluate_chunk


@shared_task(name="recommendations.evaluate_population_chunk")
def evaluate_population_chunk_task(run_id: int, patient_ids: list[str]) -> bool:
    """Evaluate one chunk; its failure is recorded in the run, so the task itself never retries."""
    return evaluate_chunk(run_id=run_id, patient_ids=patient_ids)
