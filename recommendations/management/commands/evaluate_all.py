"""`manage.py evaluate_all [--patients ID,...] [--chunk N]`: evaluate the population set-wise, with a progress bar.

Chunks go to the Celery workers when a broker is configured (the bar follows the run's progress), or run here
one after the other in the embedded default. New recommendations' events stay pending for the outbox relay.
"""

import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.models import PopulationRun, PopulationRunStatus
from recommendations.population_tasks import evaluate_population_chunk_task
from recommendations.services.population import evaluate_chunk, start_population_run


class Command(BaseCommand):
    help = "Evaluate every patient (or a list) with the active rule set, set-wise, in chunks."

    def add_arguments(self, parser):
        parser.add_argument("--patients", default="", help="comma-separated patient ids (default: everyone)")
        parser.add_argument("--chunk", type=int, default=settings.POPULATION_CHUNK_SIZE, help="patients per chunk")

    def handle(self, *args, patients: str, chunk: int, **options):
        if chunk < 1:
            raise CommandError("--chunk must be at least 1.")
        patient_ids = [item.strip() for item in patients.split(",") if item.strip()] or None
        run, chunks = start_population_run(patient_ids=patient_ids, chunk_size=chunk)
        quiet = options["verbosity"] < 1
        with tqdm(total=run.total, unit="patient", disable=quiet, file=sys.stderr) as bar:
            if settings.CELERY_TASK_ALWAYS_EAGER:
                for patient_ids_of_chunk in chunks:
                    evaluate_chunk(run_id=run.pk, patient_ids=patient_ids_of_chunk)
                    bar.update(len(patient_ids_of_chunk))
            else:
                for patient_ids_of_chunk in chunks:
                    evaluate_population_chunk_task.delay(run.pk, patient_ids_of_chunk)
                while True:
                    run.refresh_from_db()
                    bar.update(run.done - bar.n)
                    if run.status in {PopulationRunStatus.DONE, PopulationRunStatus.FAILED}:
                        break
                    time.sleep(0.5)
        run = PopulationRun.objects.get(pk=run.pk)
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(run.counts.items())) or "none"
        self.stdout.write(
            f"Run {run.pk} {run.status}: {run.done}/{run.total} patients in {run.timings.get('total', 0)} s; "
            f"new recommendations: {counts}. Their events are pending for the outbox relay."
        )
        for error in run.errors:
            self.stderr.write(f"error: {error}")
        if run.status == PopulationRunStatus.FAILED:
            raise CommandError(f"Run {run.pk} failed for some chunks (see the errors above).")
