"""Celery tasks: the event consumer and the outbox relay. Thin: each calls a service."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from recommendations import services

logger = logging.getLogger(__name__)

# Publishing must fail fast when the broker is down: the event simply waits in the outbox for the relay.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


@shared_task(bind=True, name="recommendations.handle_recommendation_event", max_retries=None)
def handle_recommendation_event_task(self, event_id: int) -> bool:
    """Consume one recommendation event; retried with exponential backoff, then marked `failed`."""
    try:
        return services.handle_recommendation_event(event_id=event_id)
    except Exception as exc:
        final = self.request.retries >= settings.EVENT_HANDLER_MAX_RETRIES
        services.record_event_failure(event_id=event_id, error=f"handling failed: {exc!r}", final=final)
        if final:
            logger.error("Event %s failed after %s retries: %r", event_id, self.request.retries, exc)
            return False
        raise self.retry(exc=exc, countdown=min(2**self.request.retries, 300)) from exc


@shared_task(name="recommendations.publish_pending_events")
def publish_pending_events_task() -> int:
    """The outbox relay, run by beat: publish whatever is still pending (e.g. after a broker outage)."""
    return services.publish_pending_events()


def send_event_to_consumer(event_id: int) -> None:
    """Put one event on the broker for the consumer; raises if the broker cannot be reached."""
    handle_recommendation_event_task.apply_async(args=[event_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY)
