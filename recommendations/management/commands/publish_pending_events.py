"""`manage.py publish_pending_events`: drain what the outbox owes the broker, e.g. after a broker outage."""

import time

from django.core.management.base import BaseCommand

from recommendations.models import EventStatus, RecommendationEvent
from recommendations.services import publish_pending_events, requeue_failed_events
from recommendations.services.outbox import RelayReport


class Command(BaseCommand):
    help = (
        "Publish due recommendation events to the broker (pending ones, and published ones never consumed), "
        "batch after batch until none is due; with --retry-failed, failed ones too."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--retry-failed", action="store_true", help="Put failed events back to pending before publishing."
        )
        parser.add_argument(
            "--batch-size", type=int, default=None, help="Events claimed per batch (default OUTBOX_RELAY_BATCH_SIZE)."
        )

    def handle(self, *args, retry_failed: bool, batch_size: int | None, **options):
        if retry_failed:
            self.stdout.write(f"Requeued {requeue_failed_events()} failed events.")
        started = time.monotonic()

        def progress(report: RelayReport) -> None:
            self.stdout.write(
                f"  batch {report.batches}: {report.published} published so far ({time.monotonic() - started:.1f} s)"
            )

        report = RelayReport()
        total = publish_pending_events(batch_size=batch_size, report=report, on_batch=progress)
        left = RecommendationEvent.objects.filter(status=EventStatus.PENDING).count()
        self.stdout.write(f"Published {total} events; {left} still pending.")
        if report.republished:
            self.stdout.write(f"{report.republished} of them were published before and never consumed.")
        if report.failed:
            self.stdout.write(f"Marked {report.failed} events failed: re-published too often, never consumed.")
        if left:
            self.stderr.write(self.style.WARNING("Some events are still pending: is the broker reachable?"))
            if report.broker_error:
                self.stderr.write(self.style.WARNING(f"Last error: {report.broker_error}"))
