"""`manage.py seed_db`: load the mock hospital (idempotent; dates relative to today)."""

from django.core.management.base import BaseCommand

from recommendations.seed import seed_mock_hospital


class Command(BaseCommand):
    help = "Load a mock hospital: patients, procedure catalogue, histories and recommendation definitions."

    def handle(self, *args, **options):
        report = seed_mock_hospital()
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {report.patients} patients, {report.procedures} procedures, "
                f"{report.histories} procedure history entries and {report.definitions} recommendation definitions."
            )
        )
        self.stdout.write("Try: make eval-patient PATIENT_ID=108 (Physical Therapy and Post-Op Rehabilitation)")
