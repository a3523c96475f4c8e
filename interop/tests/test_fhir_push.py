"""FHIR push: each new or changed recommendation is PUT, conditionally by identifier, to a FHIR server the test
runs on a free loopback port; 5xx and timeouts are retried, a 4xx fails the delivery with the OperationOutcome."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from fhir.resources.R4B.servicerequest import ServiceRequest

from interop.fhir import codes
from patients.tests.factories import PatientFactory
from recommendations.models import Delivery, PatientRecommendation, RecommendationDailyCount, RecommendationEvent
from recommendations.services import evaluate_patient

pytestmark = pytest.mark.django_db

OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "ServiceRequest.subject: unknown Patient"}],
}


class FhirServer:
    """Records each request; answers with the next status in `answers` (201 once they run out)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: deque[int] = deque()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                url = urlsplit(self.path)
                state.requests.append(
                    {
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body),
                    }
                )
                status = state.answers.popleft() if state.answers else 201
                payload = json.dumps(OUTCOME if status >= 400 else json.loads(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"


@pytest.fixture
def fhir_server(settings):
    server = FhirServer()
    settings.FHIR_PUSH_URL, settings.FHIR_PUSH_TOKEN, settings.FHIR_PUSH_TIMEOUT_SECONDS = server.url, "s3cret", 2.0
    settings.EVENT_CONSUMERS = [*settings.EVENT_CONSUMERS, "interop.fhir.push.FhirPushConsumer"]
    settings.EVENT_HANDLER_MAX_RETRIES = 3
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def evaluate(django_capture_on_commit_callbacks) -> PatientRecommendation:
    patient = PatientFactory(bmi=34.0)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_patient(patient_id=patient.pk)
    return PatientRecommendation.objects.get(patient=patient)


def fhir_delivery(link: PatientRecommendation, event_type: str = RecommendationEvent.TYPE_CREATED) -> Delivery:
    return Delivery.objects.get(event__patient_recommendation=link, event__event_type=event_type, consumer="fhir")


def test_new_recommendation_is_put_by_identifier_with_the_bearer_token(fhir_server, django_capture_on_commit_callbacks):
    link = evaluate(django_capture_on_commit_callbacks)

    (request,) = fhir_server.requests
    system = codes.clinrec_system("patient-recommendation")
    assert request["path"] == "/fhir/ServiceRequest"
    assert request["query"] == {"identifier": [f"{system}|{link.pk}"]}
    assert request["authorization"] == "Bearer s3cret"
    assert request["content_type"] == "application/fhir+json"
    resource = ServiceRequest.model_validate(request["body"])  # a valid R4B ServiceRequest
    assert (resource.status, resource.intent) == ("active", "proposal")
    assert resource.identifier[0].value == str(link.pk)
    assert resource.code.coding[0].code == "weight-management"
    assert resource.subject.reference == f"Patient/{link.patient_id}"
    assert fhir_delivery(link).status == "delivered"


def test_a_changed_recommendation_is_put_again_to_the_same_identifier(
    fhir_server, clinician_client, django_capture_on_commit_callbacks
):
    link = evaluate(django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        response = clinician_client.patch(
            f"/api/v1/patient-recommendations/{link.pk}/", {"status": "dismissed"}, format="json"
        )

    assert response.status_code == 200
    created, changed = fhir_server.requests
    assert changed["query"] == created["query"]
    assert changed["body"]["status"] == "revoked"


def test_server_errors_are_retried_until_the_push_succeeds(fhir_server, django_capture_on_commit_callbacks):
    fhir_server.answers.extend([503, 500])

    link = evaluate(django_capture_on_commit_callbacks)

    assert len(fhir_server.requests) == 3
    delivery = fhir_delivery(link)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert len(mail.outbox) == 1  # only the push was retried
    assert RecommendationDailyCount.objects.get().count == 1


def test_a_4xx_fails_the_delivery_at_once_keeping_the_operation_outcome(
    fhir_server, django_capture_on_commit_callbacks
):
    fhir_server.answers.append(422)

    link = evaluate(django_capture_on_commit_callbacks)

    assert len(fhir_server.requests) == 1
    delivery = fhir_delivery(link)
    assert delivery.status == "failed"
    assert delivery.last_error == "FHIR push 422: error invalid ServiceRequest.subject: unknown Patient"
    assert len(mail.outbox) == 1


def test_an_unreachable_server_is_retried_then_failed(settings, django_capture_on_commit_callbacks):
    server = FhirServer()
    url = server.url
    server.httpd.shutdown()
    server.httpd.server_close()  # nothing listens there any more
    settings.FHIR_PUSH_URL = url
    settings.EVENT_CONSUMERS = [*settings.EVENT_CONSUMERS, "interop.fhir.push.FhirPushConsumer"]
    settings.EVENT_HANDLER_MAX_RETRIES = 1

    link = evaluate(django_capture_on_commit_callbacks)

    delivery = fhir_delivery(link)
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "failed" in delivery.last_error and "refused" in delivery.last_error.lower()
