"""`manage.py publish_pending_events`: publish what the outbox still holds, e.g. after a broker outage."""

from django.core.management.base import BaseCommand

from recommendations.models import EventStatus, RecommendationEvent
from recommendations.services import publish_pending_events, requeue_failed_events


class Command(BaseCommand):
    help = "Publish pending recommendation events to the broker (with --retry-failed, failed ones too)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--retry-failed", action="store_true", help="Put failed events back to pending before publishing."
        )
        parser.add_argument("--batch-size", type=int, default=100, help="Events claimed per batch (default 100).")

    def handle(self, *args, retry_failed: bool, batch_size: int, **options):
        if retry_failed:
            self.stdout.write(f"Requeued {requeue_failed_events()} failed events.")
        total = 0
        while True:
            sent = publish_pending_events(batch_size=batch_size)
            total += sent
            if sent < batch_size:
                break
        left = RecommendationEvent.objects.filter(status=EventStatus.PENDING).count()
        self.stdout.write(f"Published {total} events; {left} still pending.")
        if left:
            self.stderr.write(self.style.WARNING("Some events are still pending: is the broker reachable?"))
