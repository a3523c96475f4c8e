"""The FHIR push consumer: each new or changed recommendation goes to another FHIR server as a ServiceRequest.

A conditional update by identifier (`PUT {FHIR_PUSH_URL}/ServiceRequest?identifier=system|id`) creates the
resource the first time and updates the same one after, so a retry is harmless. The resource is the one the
FHIR endpoints show (`service_request_for`) plus that identifier; a bearer token goes along when
FHIR_PUSH_TOKEN is set. 5xx answers, timeouts and broken links are retried; a 4xx fails the delivery at once,
keeping the OperationOutcome's text.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

from interop.fhir import codes
from interop.fhir.mapping import as_json, service_request_for
from recommendations.consumers import PermanentFailure, event_link
from recommendations.models import PatientRecommendation, RecommendationEvent

FHIR_JSON = "application/fhir+json"


class PushFailed(Exception):
    """The server answered 5xx, or not at all: worth a retry."""


def identifier_system() -> str:
    return codes.clinrec_system("patient-recommendation")


def service_request_url(link_id: int) -> str:
    query = urllib.parse.urlencode({"identifier": f"{identifier_system()}|{link_id}"})
    return f"{settings.FHIR_PUSH_URL.rstrip('/')}/ServiceRequest?{query}"


def push_body(link: PatientRecommendation) -> bytes:
    resource = as_json(service_request_for(link))
    resource.pop("id", None)  # the server names its own resource; ours is the identifier
    resource["identifier"] = [{"system": identifier_system(), "value": str(link.pk)}]
    return json.dumps(resource).encode()


def outcome_text(body: bytes) -> str:
    """The OperationOutcome's diagnostics and details, or the body itself when it is not one."""
    try:
        outcome = json.loads(body)
        issues = outcome.get("issue", []) if outcome.get("resourceType") == "OperationOutcome" else []
    except (ValueError, AttributeError):
        issues = []
    texts = [
        " ".join(
            filter(
                None,
                [
                    issue.get("severity"),
                    issue.get("code"),
                    issue.get("diagnostics"),
                    (issue.get("details") or {}).get("text"),
                ],
            )
        )
        for issue in issues
    ]
    return "; ".join(texts) or body.decode("utf-8", "replace")[:1000]


def push_service_request(link: PatientRecommendation) -> int:
    """PUT the recommendation's ServiceRequest; returns the HTTP status (200/201). Raises PushFailed or
    PermanentFailure."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    if settings.FHIR_PUSH_TOKEN:
        headers["Authorization"] = f"Bearer {settings.FHIR_PUSH_TOKEN}"
    request = urllib.request.Request(service_request_url(link.pk), data=push_body(link), headers=headers, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=settings.FHIR_PUSH_TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        text = f"FHIR push {exc.code}: {outcome_text(exc.read())}"
        if 400 <= exc.code < 500:
            raise PermanentFailure(text) from exc
        raise PushFailed(text) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PushFailed(f"FHIR push to {settings.FHIR_PUSH_URL} failed: {exc}") from exc


class FhirPushConsumer:
    """Pushes each new or changed recommendation to FHIR_PUSH_URL."""

    name = "fhir"
    event_types = frozenset({RecommendationEvent.TYPE_CREATED, RecommendationEvent.TYPE_STATUS_CHANGED})
    at_most_once = False

    def handle(self, event: RecommendationEvent) -> None:
        link = event_link(event)
        push_service_request(link)  # as it is now: a later state is never overwritten by an older one
