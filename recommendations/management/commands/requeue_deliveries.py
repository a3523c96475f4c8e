"""`manage.py requeue_deliveries --consumer hl7v2 --status failed`: run deliveries again, e.g. after an outage."""

from django.core.management.base import BaseCommand, CommandError

from recommendations.consumers import enabled_consumers
from recommendations.models import DeliveryStatus
from recommendations.services import requeue_deliveries


class Command(BaseCommand):
    help = "Put deliveries (failed ones by default) of one consumer, or all, back to pending and run them again."

    def add_arguments(self, parser):
        parser.add_argument("--consumer", default=None, help="Only this consumer's deliveries (e.g. hl7v2).")
        parser.add_argument(
            "--status",
            default=DeliveryStatus.FAILED,
            choices=[DeliveryStatus.FAILED, DeliveryStatus.PENDING],
            help="Which deliveries: failed (default), or pending ones that stalled.",
        )

    def handle(self, *args, consumer: str | None, status: str, **options):
        if consumer is not None and consumer not in enabled_consumers():
            names = ", ".join(enabled_consumers())
            raise CommandError(f"--consumer {consumer!r} is not an enabled consumer (enabled: {names}).")
        count = requeue_deliveries(consumer=consumer, status=status)
        self.stdout.write(f"Requeued {count} {status} deliveries.")
