"""HL7 v2.5.1 messages ClinRec sends and answers, built with hl7apy and validated strictly.

An `ORM^O01` general order per patient recommendation: ORC `NW` when it is made, `CA` when dismissed, `SC`
(order status CM) when completed; the placer order number is the patient recommendation id throughout, so the
receiving system updates the same order. `ACK` answers are built here too (for the listener).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.parser import parse_message
from hl7apy.validation import Validator

from recommendations.models import PatientRecommendation, RecommendationStatus

VERSION = "2.5.1"
PLACER_NAMESPACE = "CLINREC"
ORDER_CONTROL = {  # the recommendation's status -> (ORC-1 order control, ORC-5 order status)
    RecommendationStatus.ACTIVE: ("NW", ""),
    RecommendationStatus.DISMISSED: ("CA", "CA"),
    RecommendationStatus.COMPLETED: ("SC", "CM"),
}
SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}  # HL7 table 0001

# hl7apy 1.3.5 reads ORM^O01's order-detail choice group <OBR|RQD|RQ1|RXO|ODS|ODT> as a sequence, so every
# order carrying an OBR "misses" the other five. Exactly these errors are set aside; any other one fails.
CHOICE_GROUP = "ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP"
FALSE_CHOICE_ERRORS = frozenset(
    f"Missing required child {CHOICE_GROUP}.{name}" for name in ("RQD", "RQ1", "RXO", "ODS", "ODT")
)


class InvalidMessage(Exception):
    """A message failed strict HL7 v2.5.1 validation (beyond hl7apy's known false errors)."""


def ts(moment: datetime) -> str:
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S")


def validation_errors(message: Message) -> list[str]:
    """Every error strict validation finds in `message` (hl7apy reports the first only, or all to a file)."""
    with tempfile.NamedTemporaryFile("r", suffix=".txt") as report:
        with contextlib.suppress(HL7apyException):  # it raises the first; the report has them all
            Validator.validate(message, report_file=report.name)
        return [line.removeprefix("Error: ").strip() for line in report if line.startswith("Error: ")]


def validate_strictly(message: Message) -> None:
    """Raise InvalidMessage unless the only errors are hl7apy's false choice-group errors, when an OBR is there."""
    errors = validation_errors(message)
    has_obr = bool(re.search(r"(^|\r)OBR\|", message.to_er7()))
    real = [error for error in errors if not (has_obr and error in FALSE_CHOICE_ERRORS)]
    if real:
        raise InvalidMessage("; ".join(real))


def _header(message: Message, *, control_id: str, message_type: str, at: datetime) -> None:
    message.msh.msh_3 = settings.HL7_SENDING_APPLICATION
    message.msh.msh_4 = settings.HL7_SENDING_FACILITY
    message.msh.msh_5 = settings.HL7_RECEIVING_APPLICATION
    message.msh.msh_6 = settings.HL7_RECEIVING_FACILITY
    message.msh.msh_7 = ts(at)
    message.msh.msh_9 = message_type
    message.msh.msh_10 = control_id
    message.msh.msh_11 = settings.HL7_PROCESSING_ID
    message.msh.msh_12 = VERSION


def _escape(text: str) -> str:
    """HL7 escapes for the delimiters, and no segment break inside a field."""
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
    return text.replace("~", "\\R\\").replace("\r", " ").replace("\n", " ")


def order_message(*, link: PatientRecommendation, control_id: str, at: datetime | None = None) -> Message:
    """The ORM^O01 for a patient recommendation as it stands (new, dismissed or completed), validated strictly."""
    at = at or timezone.now()
    patient, definition = link.patient, link.recommendation
    order_control, order_status = ORDER_CONTROL[link.status]
    message = Message("ORM_O01", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    _header(message, control_id=control_id, message_type="ORM^O01^ORM_O01", at=at)

    pid = message.add_group("ORM_O01_PATIENT").pid
    pid.pid_1 = "1"
    pid.pid_3 = f"{_escape(patient.pk)}^^^{PLACER_NAMESPACE}^PI"
    given, _, family = patient.name.rpartition(" ")
    pid.pid_5 = f"{_escape(family)}^{_escape(given)}" if given else _escape(family)
    if patient.birth_date:
        pid.pid_7 = patient.birth_date.strftime("%Y%m%d")
    pid.pid_8 = SEX.get(patient.sex, "U")

    order = message.add_group("ORM_O01_ORDER")
    placer = f"{link.pk}^{PLACER_NAMESPACE}"
    order.orc.orc_1 = order_control
    order.orc.orc_2 = placer
    if order_status:
        order.orc.orc_5 = order_status
    order.orc.orc_9 = ts(at)
    detail = order.add_group("ORM_O01_ORDER_DETAIL")
    obr = detail.add_group(CHOICE_GROUP).obr
    obr.obr_1 = "1"
    obr.obr_2 = placer
    obr.obr_4 = f"{_escape(definition.pk)}^{_escape(definition.name)}^L"
    if link.reason:
        nte = detail.add_segment("NTE")
        nte.nte_1 = "1"
        nte.nte_3 = _escape(link.reason)
    validate_strictly(message)
    return message


@dataclass(frozen=True)
class Acknowledgement:
    """What an ACK said: its code (AA, AE, AR; CA, CE, CR), the control id it answers, and its text."""

    code: str
    control_id: str
    text: str

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def read_ack(er7: str) -> Acknowledgement:
    """Read an ACK (tolerantly: engines send all sorts); raises InvalidMessage if it has no MSA."""
    try:
        message = parse_message(er7.strip(), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
        msa = message.msa
        texts = [msa.msa_3.value] + [err.err_8.value for err in message.children if err.name == "ERR"]
        return Acknowledgement(
            code=msa.msa_1.value, control_id=msa.msa_2.value, text="; ".join(text for text in texts if text)
        )
    except (HL7apyException, AttributeError, IndexError) as exc:
        raise InvalidMessage(f"not an HL7 acknowledgement: {exc!r}") from exc


def ack_message(*, received: Message, code: str, text: str = "", control_id: str | None = None) -> Message:
    """The ACK of a received message: MSA with `code`, its control id and `text` (for AE/AR)."""
    ack = Message("ACK", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)
    trigger = received.msh.msh_9.msh_9_2.value or "O01"
    _header(
        ack,
        control_id=control_id or f"ACK{received.msh.msh_10.value}"[:20],
        message_type=f"ACK^{trigger}^ACK",
        at=timezone.now(),
    )
    # The answer goes back the way the message came: its receiver is the sender now.
    ack.msh.msh_3 = received.msh.msh_5.value or "CLINREC-LISTENER"
    ack.msh.msh_4 = received.msh.msh_6.value or settings.HL7_SENDING_FACILITY
    ack.msh.msh_5 = received.msh.msh_3.value
    ack.msh.msh_6 = received.msh.msh_4.value
    ack.msa.msa_1 = code
    ack.msa.msa_2 = received.msh.msh_10.value
    if text:
        ack.msa.msa_3 = _escape(text)[:80]
    return ack


def parse_strictly(er7: str) -> Message:
    """Parse a received message strictly (hl7apy) and validate it; raises InvalidMessage."""
    try:
        message = parse_message(er7.strip(), validation_level=VALIDATION_LEVEL.STRICT)
    except HL7apyException as exc:
        raise InvalidMessage(str(exc)) from exc
    validate_strictly(message)
    return message
