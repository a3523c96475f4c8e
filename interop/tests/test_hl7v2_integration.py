"""End to end over the machine's real RabbitMQ and a real Celery worker: an evaluation reaches the order system as
an ORM^O01 (NW), dismissing it as a cancel (CA) for the same order; one e-mail, one count.

The worker, the broker queue and its clean-up are those of recommendations/tests/test_events_integration.py;
the MLLP listener is the one of test_hl7v2.py (hl7apy, strict), on a free loopback port.
"""

from __future__ import annotations

import pytest
from django.core import mail

from interop.tests.test_hl7v2 import listener  # noqa: F401 - the MLLP listener fixture
from patients.tests.factories import PatientFactory
from recommendations.models import RecommendationDailyCount, RecommendationEvent
from recommendations.tests.test_events_integration import broker, consuming, wait_for_handling  # noqa: F401

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_evaluate_then_dismiss_sends_the_order_then_its_cancel_over_rabbitmq(
    broker,  # noqa: F811
    listener,  # noqa: F811
    clinician_client,
):
    patient = PatientFactory(bmi=34.0, email="pat@example.org")

    evaluated = clinician_client.post(f"/api/v1/patients/{patient.pk}/evaluate/")
    (item,) = evaluated.json()["recommendations"]
    link_id = item["patient_recommendation"]
    dismissed = clinician_client.patch(
        f"/api/v1/patient-recommendations/{link_id}/", {"status": "dismissed"}, format="json"
    )
    assert (evaluated.status_code, dismissed.status_code) == (200, 200), dismissed.content

    with consuming(broker) as handled:
        wait_for_handling(handled, 2)

    assert [result for _event, result in handled] == [True, True]
    order, cancel = listener.received
    assert order.orm_o01_order.orc.orc_1.value == "NW"
    assert cancel.orm_o01_order.orc.orc_1.value == "CA"
    assert order.orm_o01_order.orc.orc_2.orc_2_1.value == cancel.orm_o01_order.orc.orc_2.orc_2_1.value == str(link_id)
    assert order.orm_o01_patient.pid.pid_3.pid_3_1.value == patient.pk
    assert set(RecommendationEvent.objects.filter(patient_id=patient.pk).values_list("status", flat=True)) == {
        "consumed"
    }
    assert len(mail.outbox) == 1
    assert sum(RecommendationDailyCount.objects.values_list("count", flat=True)) == 1
