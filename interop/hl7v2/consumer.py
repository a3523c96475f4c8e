"""The HL7 v2 consumer: each new, dismissed or completed recommendation goes to the order system as ORM^O01.

Delivered only on an ACK AA (or CA) for the message's control id. AE/AR fail the delivery at once with the
acknowledgement's text (the receiver refused it: sending again would not help); no answer, or a broken link,
is retried. The control id is derived from the delivery, so every retry of one delivery carries the same id and
the receiver can recognise a repeat; it is unique across deliveries.
"""

from __future__ import annotations

from django.conf import settings

from interop.hl7v2 import messages, mllp
from recommendations.consumers import PermanentFailure, event_link
from recommendations.models import Delivery, RecommendationEvent


def control_id(delivery_id: int) -> str:
    return f"CLINREC{delivery_id}"


class Hl7v2Consumer:
    """Sends an ORM^O01 per recommendation event to HL7_MLLP_HOST:HL7_MLLP_PORT."""

    name = "hl7v2"
    event_types = frozenset({RecommendationEvent.TYPE_CREATED, RecommendationEvent.TYPE_STATUS_CHANGED})
    at_most_once = False

    def handle(self, event: RecommendationEvent) -> None:
        link = event_link(event)
        delivery_id = Delivery.objects.values_list("pk", flat=True).get(event=event, consumer=self.name)
        status = event.payload.get("status", "active") if event.event_type == event.TYPE_STATUS_CHANGED else "active"
        if status not in messages.ORDER_CONTROL:
            return
        link.status = status  # the order as the event saw it, not as it is now
        ident = control_id(delivery_id)
        try:
            message = messages.order_message(link=link, control_id=ident, at=event.created_at)
        except messages.InvalidMessage as exc:  # the same data would fail again: for an operator
            raise PermanentFailure(f"ORM^O01 for {ident} is not valid HL7 v2.5.1: {exc}") from exc
        answer = mllp.send(
            message.to_er7(),
            host=settings.HL7_MLLP_HOST,
            port=settings.HL7_MLLP_PORT,
            timeout=settings.HL7_MLLP_TIMEOUT_SECONDS,
        )
        try:
            ack = messages.read_ack(answer)
        except messages.InvalidMessage as exc:
            raise mllp.MllpError(f"unreadable answer to {ident}: {exc}") from exc
        if ack.control_id != ident:
            raise mllp.MllpError(f"acknowledgement for control id {ack.control_id!r}, expected {ident!r}")
        if not ack.accepted:
            raise PermanentFailure(f"HL7 {ack.code} for {ident}: {ack.text or 'no text'}")
