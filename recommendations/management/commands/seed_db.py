"""`manage.py seed_db [--patients N] [--seed S] [--procedures K]`: load the mock hospital (idempotent; dates
relative to today), and optionally N synthetic patients with reproducible histories on top of it, in bulk."""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recommendations.seed import seed_mock_hospital, seed_synthetic_patients


class Command(BaseCommand):
    help = "Load a mock hospital: patients, procedure catalogue, histories and recommendation definitions."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=0, help="synthetic patients to add (default: none)")
        parser.add_argument("--seed", type=int, default=1, help="generator seed: same seed, same patients")
        parser.add_argument(
            "--procedures", type=int, default=None, help="history entries per synthetic patient (default: 0 to 5)"
        )

    def handle(self, *args, patients: int, seed: int, procedures: int | None, **options):
        if patients < 0 or seed < 0 or (procedures is not None and procedures < 0):
            raise CommandError("--patients, --seed and --procedures must not be negative.")
        report = seed_mock_hospital()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {report.patients} patients, {report.procedures} procedures, "
                f"{report.histories} procedure history entries and {report.definitions} recommendation definitions."
            )
        )
        if patients:
            with tqdm(total=patients, unit="patient", disable=options["verbosity"] < 1, file=sys.stderr) as bar:

                def progress(done: int) -> None:
                    bar.update(done - bar.n)

                created = seed_synthetic_patients(count=patients, seed=seed, procedures=procedures, progress=progress)
            self.stdout.write(
                self.style.SUCCESS(f"Added {created} synthetic patients (seed {seed}; {patients - created} existed).")
            )
        self.stdout.write("Try: make eval-patient PATIENT_ID=108 (Physical Therapy and Post-Op Rehabilitation)")
