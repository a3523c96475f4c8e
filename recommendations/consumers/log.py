"""The log consumer: one structured JSON line per event on the `clinrec.events` logger."""

from __future__ import annotations

import json
import logging

from recommendations.models import RecommendationEvent

event_log = logging.getLogger("clinrec.events")


class LogConsumer:
    """Logs every event (new recommendations and status changes)."""

    name = "log"
    event_types = frozenset({RecommendationEvent.TYPE_CREATED, RecommendationEvent.TYPE_STATUS_CHANGED})
    at_most_once = False

    def handle(self, event: RecommendationEvent) -> None:
        line = {
            "event": event.event_type,
            "event_id": event.pk,
            "patient": event.patient_id,
            "recommendation": event.recommendation_id,
            "reason": event.payload.get("reason", ""),
        }
        if "status" in event.payload:
            line["status"] = event.payload["status"]
        event_log.info(json.dumps(line, sort_keys=True))

    def handle_batch(self, events: list[RecommendationEvent]) -> None:
        for event in events:  # one savepoint for the batch rather than one per line: it writes nothing
            self.handle(event)
