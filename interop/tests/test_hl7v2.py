"""HL7 v2.5.1 ORM^O01 orders over MLLP: each recommendation reaches a real listener once, parses strictly, and
carries the right fields; AE fails the delivery at once, silence is retried; the other consumers are untouched.

The listener is a real MLLP server on a free loopback port, in the test's process; it parses every message with
hl7apy (strict) and answers AA, AE or nothing, as each test asks. Celery is eager: retries run at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date

import pytest
from django.core import mail
from django.core.management import call_command
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_message

from interop.hl7v2 import messages
from interop.hl7v2.mllp import MllpListener
from patients.tests.factories import PatientFactory
from recommendations.models import Delivery, PatientRecommendation, RecommendationDailyCount, RecommendationEvent
from recommendations.services import evaluate_patient
from recommendations.tests.factories import PatientRecommendationFactory

pytestmark = pytest.mark.django_db

CORE = [
    "recommendations.consumers.log.LogConsumer",
    "recommendations.consumers.email.EmailConsumer",
    "recommendations.consumers.analytics.AnalyticsConsumer",
]


@dataclass
class Listener:
    """What the order system received (parsed strictly), and how it will answer the next messages."""

    received: list[Message] = field(default_factory=list)
    answers: deque[str] = field(default_factory=deque)  # "AA", "AE", "silence"; AA once they run out
    error_text: str = "Unknown ordering provider"

    def respond(self, er7: str) -> str | None:
        message = parse_message(er7.strip(), validation_level=VALIDATION_LEVEL.STRICT)
        errors = messages.validation_errors(message)
        assert set(errors) <= messages.FALSE_CHOICE_ERRORS, errors  # strict, but for hl7apy's known false errors
        self.received.append(message)
        answer = self.answers.popleft() if self.answers else "AA"
        if answer == "silence":
            return None
        text = self.error_text if answer == "AE" else ""
        return messages.ack_message(received=message, code=answer, text=text).to_er7()

    def control_ids(self) -> list[str]:
        return [message.msh.msh_10.value for message in self.received]


@pytest.fixture
def listener(settings):
    state = Listener()
    server = MllpListener("127.0.0.1", 0, state.respond)
    server.start()
    settings.HL7_MLLP_HOST, settings.HL7_MLLP_PORT, settings.HL7_MLLP_TIMEOUT_SECONDS = "127.0.0.1", server.port, 0.5
    settings.EVENT_CONSUMERS = [*CORE, "interop.hl7v2.consumer.Hl7v2Consumer"]
    settings.EVENT_HANDLER_MAX_RETRIES = 3
    yield state
    server.shutdown()
    server.server_close()


def obese_patient(**overrides):
    return PatientFactory(bmi=34.0, **overrides)


def evaluate(patient, django_capture_on_commit_callbacks) -> PatientRecommendation:
    with django_capture_on_commit_callbacks(execute=True):
        (outcome,) = evaluate_patient(patient_id=patient.pk).recommendations
    return PatientRecommendation.objects.get(patient=patient, recommendation_id=outcome.recommendation)


def hl7_delivery(link: PatientRecommendation, event_type: str = RecommendationEvent.TYPE_CREATED) -> Delivery:
    return Delivery.objects.get(event__patient_recommendation=link, event__event_type=event_type, consumer="hl7v2")


def test_new_recommendation_sends_one_orm_o01_with_patient_order_definition_and_reason(
    listener, django_capture_on_commit_callbacks
):
    patient = obese_patient(id="p-hl7", name="Elena Maria Rossi", birth_date=date(1961, 3, 9), sex="female")

    link = evaluate(patient, django_capture_on_commit_callbacks)

    (message,) = listener.received
    assert message.msh.msh_9.to_er7() == "ORM^O01^ORM_O01"
    assert message.msh.msh_12.value == "2.5.1"
    pid = message.orm_o01_patient.pid
    assert pid.pid_3.pid_3_1.value == "p-hl7"
    assert pid.pid_5.to_er7() == "Rossi^Elena Maria"
    assert (pid.pid_7.value, pid.pid_8.value) == ("19610309", "F")
    order = message.orm_o01_order
    assert order.orc.orc_1.value == "NW"
    assert order.orc.orc_2.orc_2_1.value == str(link.pk)  # placer order number = the patient recommendation
    detail = order.orm_o01_order_detail
    obr = detail.orm_o01_obrrqdrq1rxoodsodt_suppgrp.obr
    assert obr.obr_2.obr_2_1.value == str(link.pk)
    assert (obr.obr_4.obr_4_1.value, obr.obr_4.obr_4_2.value) == ("weight-management", "Weight Management Program")
    assert detail.nte.nte_3.value.startswith("BMI 34")
    delivery = hl7_delivery(link)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    assert RecommendationEvent.objects.get(patient_recommendation=link).status == "consumed"


def test_control_ids_are_unique_per_delivery(listener, django_capture_on_commit_callbacks):
    evaluate(obese_patient(), django_capture_on_commit_callbacks)
    evaluate(obese_patient(), django_capture_on_commit_callbacks)

    first, second = listener.control_ids()
    assert first != second


def test_hl7apy_wrongly_requires_the_whole_order_detail_choice_and_only_those_errors_are_set_aside():
    link = PatientRecommendationFactory()
    message = messages.order_message(link=link, control_id="CLINREC1")  # passes: only the false errors

    assert set(messages.validation_errors(message)) == messages.FALSE_CHOICE_ERRORS

    # Any other error still fails: an OBR without its (required) universal service identifier, OBR-4.
    without_service = (
        message.to_er7()
        .replace("|weight-management^", "|")
        .replace(f"|{link.recommendation.pk}^{link.recommendation.name}^L", "")
    )
    with pytest.raises(messages.InvalidMessage) as refused:
        messages.parse_strictly(without_service)
    assert str(refused.value) == "Missing required child OBR.OBR_4"


def test_ae_fails_the_hl7_delivery_with_the_ack_text_and_the_other_consumers_happen_once(
    listener, django_capture_on_commit_callbacks
):
    listener.answers.append("AE")

    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)

    assert len(listener.received) == 1  # refused: not sent again
    delivery = hl7_delivery(link)
    assert delivery.status == "failed"
    assert "AE" in delivery.last_error and "Unknown ordering provider" in delivery.last_error
    event = RecommendationEvent.objects.get(patient_recommendation=link)
    assert {d.consumer: d.status for d in event.deliveries.all()} == {
        "log": "delivered",
        "email": "delivered",
        "analytics": "delivered",
        "hl7v2": "failed",
    }
    assert event.status == "failed"
    assert len(mail.outbox) == 1
    assert RecommendationDailyCount.objects.get(recommendation_id="weight-management").count == 1


def test_silence_is_retried_with_the_same_control_id_and_only_hl7_is_retried(
    listener, django_capture_on_commit_callbacks
):
    listener.answers.extend(["silence", "silence"])

    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)

    assert len(listener.received) == 3
    assert len(set(listener.control_ids())) == 1  # stable across retries: the receiver can spot a repeat
    delivery = hl7_delivery(link)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len(mail.outbox) == 1
    assert RecommendationDailyCount.objects.get(recommendation_id="weight-management").count == 1
    assert Delivery.objects.get(event=delivery.event, consumer="email").attempts == 1


def test_silence_until_the_retries_run_out_fails_the_delivery(listener, settings, django_capture_on_commit_callbacks):
    settings.EVENT_HANDLER_MAX_RETRIES = 1
    listener.answers.extend(["silence"] * 5)

    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)

    delivery = hl7_delivery(link)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "no acknowledgement" in delivery.last_error


def test_requeue_deliveries_sends_the_failed_order_again_and_nothing_else(listener, django_capture_on_commit_callbacks):
    listener.answers.append("AE")
    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("requeue_deliveries", "--consumer", "hl7v2", "--status", "failed")

    assert len(listener.received) == 2
    assert listener.control_ids()[0] == listener.control_ids()[1]
    assert hl7_delivery(link).status == "delivered"
    assert RecommendationEvent.objects.get(patient_recommendation=link).status == "consumed"
    assert len(mail.outbox) == 1


@pytest.mark.parametrize(
    ("status", "order_control", "order_status"), [("dismissed", "CA", "CA"), ("completed", "SC", "CM")]
)
def test_dismissing_or_completing_over_the_api_updates_the_same_order(
    listener, clinician_client, django_capture_on_commit_callbacks, status, order_control, order_status
):
    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.patch(
            f"/api/v1/patient-recommendations/{link.pk}/", {"status": status}, format="json"
        )

    assert response.status_code == 200, response.content
    new, change = listener.received
    assert new.orm_o01_order.orc.orc_1.value == "NW"
    assert change.orm_o01_order.orc.orc_1.value == order_control
    assert change.orm_o01_order.orc.orc_5.value == order_status
    assert change.orm_o01_order.orc.orc_2.orc_2_1.value == str(link.pk)
    assert hl7_delivery(link, RecommendationEvent.TYPE_STATUS_CHANGED).status == "delivered"
    assert len(mail.outbox) == 1  # e-mail and analytics ignore status changes
    assert RecommendationDailyCount.objects.get(recommendation_id="weight-management").count == 1


def test_sending_is_off_without_a_host(settings, django_capture_on_commit_callbacks):
    settings.HL7_MLLP_HOST = ""

    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)

    assert not Delivery.objects.filter(consumer="hl7v2").exists()
    assert RecommendationEvent.objects.get(patient_recommendation=link).status == "consumed"


def test_events_endpoint_shows_each_delivery(listener, viewer_client, django_capture_on_commit_callbacks):
    listener.answers.append("AE")
    link = evaluate(obese_patient(), django_capture_on_commit_callbacks)
    event = RecommendationEvent.objects.get(patient_recommendation=link)

    body = viewer_client.get(f"/api/v1/events/{event.pk}/").json()

    deliveries = {delivery["consumer"]: delivery for delivery in body["deliveries"]}
    assert set(deliveries) == {"log", "email", "analytics", "hl7v2"}
    assert deliveries["email"]["status"] == "delivered" and deliveries["email"]["delivered_at"]
    assert deliveries["hl7v2"]["status"] == "failed"
    assert deliveries["hl7v2"]["attempts"] == 1
    assert "Unknown ordering provider" in deliveries["hl7v2"]["last_error"]
    assert set(deliveries["log"]) == {"consumer", "status", "attempts", "last_error", "delivered_at"}


def test_hl7_listen_command_prints_each_message_and_acknowledges_it():
    """`manage.py hl7_listen`, as someone trying it by hand would run it: in a process of its own."""
    import os
    import re
    import subprocess
    import sys
    import threading

    from django.conf import settings as django_settings

    from interop.hl7v2 import mllp

    process = subprocess.Popen(
        [sys.executable, "manage.py", "hl7_listen", "--port", "0"],
        cwd=django_settings.BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(30, process.kill)  # never hang the suite on a silent listener
    watchdog.start()
    try:
        banner = process.stdout.readline()
        port = int(re.search(r"on 127\.0\.0\.1:(\d+)", banner).group(1))
        message = messages.order_message(link=PatientRecommendationFactory(), control_id="CLINREC42").to_er7()

        answer = messages.read_ack(mllp.send(message, host="127.0.0.1", port=port, timeout=10))

        assert (answer.code, answer.control_id) == ("AA", "CLINREC42")
        assert process.stdout.readline().startswith("MSH|^~\\&|")  # it printed what it received
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(10)
        process.stdout.close()
