"""CDS Hooks 2.0: discovery, cards from the EHR's prefetch or ClinRec's records, feedback and its analytics."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone
from fhir.resources.R4B.servicerequest import ServiceRequest

from interop.fhir import codes
from interop.models import CdsFeedback, IssuedCard
from interop.tests.helpers import resources_of
from patients.models import Patient
from recommendations.models import PatientRecommendation, RecommendationEvent

PATIENT_VIEW = "/cds-services/patient-view"


def searchset(resources: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def prefetch_from(everything: dict) -> dict:
    """What an EHR would prefetch for ClinRec's templates, taken from a `$everything` Bundle."""
    [patient] = resources_of(everything, "Patient")
    bmi = [
        o
        for o in resources_of(everything, "Observation")
        if any(c["code"] == codes.BMI.loinc for c in o["code"]["coding"])
    ]
    return {
        "patient": patient,
        "procedures": searchset(resources_of(everything, "Procedure")),
        "bmi": searchset(bmi),
        "conditions": searchset(resources_of(everything, "Condition")),
    }


def hook_request(patient_id: str, *, prefetch: dict | None = None, hook: str = "patient-view", **extra) -> dict:
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": patient_id},
        **extra,
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def stranger_prefetch(patient_id: str = "ehr-777") -> dict:
    """A patient ClinRec has never seen: 80, chronic pain, BMI 35, a knee replacement 10 days ago."""
    subject = {"reference": f"Patient/{patient_id}"}
    knee = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": subject,
        "code": {"coding": [{"system": codes.SNOMED, "code": "609588000"}]},
        "performedDateTime": (timezone.now() - timedelta(days=10)).isoformat(),
    }
    bmi = {
        "resourceType": "Observation",
        "status": "final",
        "subject": subject,
        "code": {"coding": [{"system": codes.LOINC, "code": codes.BMI.loinc}]},
        "valueQuantity": {"value": 35, "unit": "kg/m2", "system": codes.UCUM, "code": "kg/m2"},
    }
    pain = {
        "resourceType": "Condition",
        "subject": subject,
        "clinicalStatus": {"coding": [{"system": codes.CONDITION_CLINICAL, "code": "active"}]},
        "code": {"coding": [{"system": codes.SNOMED, "code": codes.CHRONIC_PAIN}]},
    }
    born = date.today().replace(year=date.today().year - 80) - timedelta(days=30)
    return {
        "patient": {"resourceType": "Patient", "id": patient_id, "birthDate": born.isoformat()},
        "procedures": searchset([knee]),
        "bmi": searchset([bmi]),
        "conditions": searchset([pain]),
    }


def call(client, body: dict, *, service: str = "patient-view", status: int = 200) -> dict:
    response = client.post(f"/cds-services/{service}", body, format="json")
    assert response.status_code == status, response.content
    return response.json()


def remembered(hook_instance: str) -> set[tuple[str, str]]:
    return set(IssuedCard.objects.filter(hook_instance=hook_instance).values_list("recommendation_id", "reason"))


def test_discovery_lists_two_services_with_their_hooks_and_prefetch(viewer_client):
    response = viewer_client.get("/cds-services")
    assert response.status_code == 200
    services = {s["id"]: s for s in response.json()["services"]}
    assert {sid: s["hook"] for sid, s in services.items()} == {
        "patient-view": "patient-view",
        "discharge-rehab": "encounter-discharge",
    }
    for service in services.values():
        assert service["title"] and service["description"]
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert service["prefetch"]["procedures"] == "Procedure?patient={{context.patientId}}"
        assert service["prefetch"]["bmi"] == "Observation?patient={{context.patientId}}&code=http://loinc.org|39156-5"
        assert (
            "Condition?patient={{context.patientId}}&code=http://snomed.info/sct|82423001"
            in (service["prefetch"]["conditions"])
        )


def test_a_patient_clinrec_never_saw_gets_cards_from_the_prefetch_and_nothing_is_recorded(seeded, viewer_client):
    patients = Patient.objects.count()
    body = call(viewer_client, hook_request("ehr-777", prefetch=stranger_prefetch()))
    topics = {card["source"]["topic"]["code"] for card in body["cards"]}
    assert topics == {"physical-therapy", "weight-management", "post-op-rehab"}
    assert Patient.objects.count() == patients
    assert PatientRecommendation.objects.count() == 0
    assert RecommendationEvent.objects.count() == 0
    assert IssuedCard.objects.filter(patient_id="ehr-777").count() == 3


def test_cards_follow_the_cds_hooks_card_shape(seeded, viewer_client):
    body = call(viewer_client, hook_request("ehr-777", prefetch=stranger_prefetch()))
    card = next(c for c in body["cards"] if c["source"]["topic"]["code"] == "weight-management")
    uuid.UUID(card["uuid"])
    assert len(card["summary"]) < 140 and "Weight Management Program" in card["summary"]
    assert "**Why:** BMI 35 > 30." in card["detail"]
    assert card["indicator"] == "info"
    assert card["source"]["label"] == "ClinRec"
    assert card["source"]["topic"]["system"] == codes.clinrec_system("recommendation")
    assert card["selectionBehavior"] == "any"
    [suggestion] = card["suggestions"]
    assert uuid.UUID(suggestion["uuid"]) != uuid.UUID(card["uuid"])
    [action] = suggestion["actions"]
    assert action["type"] == "create"
    request = ServiceRequest.model_validate(action["resource"])
    assert request.intent == "proposal"
    assert request.subject.reference == "Patient/ehr-777"
    assert request.reasonCode[0].text == "BMI 35 > 30"
    stored = IssuedCard.objects.get(uuid=card["uuid"])
    assert (str(stored.suggestion_uuid), stored.recommendation_id, stored.reason) == (
        suggestion["uuid"],
        "weight-management",
        "BMI 35 > 30",
    )


def test_warning_indicator_when_the_rule_is_configured_so(seeded, viewer_client, settings):
    settings.CDS_WARNING_RULES = ["post_op_rehab"]
    body = call(viewer_client, hook_request("ehr-777", prefetch=stranger_prefetch()))
    indicators = {c["source"]["topic"]["code"]: c["indicator"] for c in body["cards"]}
    assert indicators == {"physical-therapy": "info", "weight-management": "info", "post-op-rehab": "warning"}


def test_without_prefetch_the_stored_patient_is_evaluated_and_nothing_recorded(seeded, viewer_client):
    body = call(viewer_client, hook_request("108"))
    assert {c["source"]["topic"]["code"] for c in body["cards"]} == {"physical-therapy", "post-op-rehab"}
    assert PatientRecommendation.objects.count() == 0
    assert RecommendationEvent.objects.count() == 0


def test_a_finding_already_active_still_gets_a_card_saying_since_when(seeded, viewer_client, clinician_client):
    clinician_client.post("/api/v1/patients/105/evaluate/")
    since = PatientRecommendation.objects.get(patient_id="105").recommended_at
    [card] = call(viewer_client, hook_request("105"))["cards"]
    assert f"Already recorded as active since {since:%Y-%m-%d}" in card["detail"]


def test_the_discharge_service_answers_the_encounter_discharge_hook(seeded, viewer_client):
    body = hook_request("102", hook="encounter-discharge")
    body["context"]["encounterId"] = "enc-1"
    cards = call(viewer_client, body, service="discharge-rehab")["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["post-op-rehab"]


def test_neither_prefetch_nor_stored_patient_is_412(seeded, viewer_client):
    body = call(viewer_client, hook_request("ehr-999"), status=412)
    assert "'ehr-999' is unknown to ClinRec" in body["detail"]


def test_equivalence_everything_as_prefetch_gives_exactly_the_evaluation(seeded, viewer_client, clinician_client):
    findings = {}
    for patient_id in Patient.objects.values_list("pk", flat=True):
        everything = viewer_client.get(f"/fhir/Patient/{patient_id}/$everything").json()
        request = hook_request(patient_id, prefetch=prefetch_from(everything))
        cards = call(viewer_client, request)["cards"]
        evaluation = clinician_client.post(f"/api/v1/patients/{patient_id}/evaluate/").json()
        expected = {(item["recommendation"], item["reason"]) for item in evaluation["recommendations"]}
        assert remembered(request["hookInstance"]) == expected, patient_id
        assert len(cards) == len(expected)
        findings[patient_id] = {recommendation for recommendation, _ in expected}
    # Not vacuous: the seeded hospital's documented outcomes are among them.
    assert findings["108"] == {"physical-therapy", "post-op-rehab"}
    assert findings["105"] == {"weight-management"}
    assert findings["102"] == {"post-op-rehab"}
    assert findings["106"] == findings["109"] == findings["112"] == set()


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda b: b.pop("hookInstance"), "hookInstance", "required"),
        (lambda b: b.update(hook="order-sign"), "hook", "answers the patient-view hook, not 'order-sign'"),
        (lambda b: b["context"].pop("patientId"), "context", "patientId required"),
        (lambda b: b.update(fhirAuthorization={"access_token": "x"}), "fhirAuthorization", "required"),
        (
            lambda b: b.update(prefetch={**stranger_prefetch(), "patient": stranger_prefetch()["bmi"]}),
            "prefetch.patient",
            "Must be a Patient, got a Bundle",
        ),
        (
            lambda b: b.update(prefetch={**stranger_prefetch(), "procedures": stranger_prefetch()["bmi"]}),
            "prefetch.procedures.entry[0]",
            "Must be a Procedure, got a Observation",
        ),
        (
            lambda b: b.update(
                prefetch={
                    **stranger_prefetch(),
                    "patient": {"resourceType": "Patient", "id": "ehr-777", "birthDate": "soon"},
                }
            ),
            "prefetch.patient",
            "Invalid Patient: birthDate",
        ),
        (
            lambda b: b.update(prefetch={**stranger_prefetch(), "patient": {"resourceType": "Patient", "id": "other"}}),
            "prefetch.patient",
            "context.patientId is 'ehr-777'",
        ),
        (lambda b: b.update(prefetch={**stranger_prefetch(), "labs": None}), "prefetch.labs", "Not a prefetch key"),
        (
            lambda b: b.update(prefetch={**stranger_prefetch(), "bmi": {"resourceType": "Foo"}}),
            "prefetch.bmi",
            "Unknown FHIR resource type 'Foo'",
        ),
        (lambda b: b.update(prefetch={**stranger_prefetch(), "bmi": ["x"]}), "prefetch.bmi", "Must be a FHIR resource"),
        (lambda b: b.update(prefetch="everything"), "prefetch", "Expected a dictionary"),
        (
            lambda b: b["prefetch"]["patient"].update(birthDate="1946"),
            "prefetch",
            "Patient.birthDate '1946' must be a full date",
        ),
        (
            lambda b: b["prefetch"]["procedures"]["entry"][0]["resource"].update(performedDateTime="2026-05"),
            "prefetch",
            "performedDateTime '2026-05' must give at least a full date",
        ),
    ],
)
def test_bad_hook_requests_are_400_naming_the_problem_and_store_nothing(seeded, viewer_client, mutate, field, words):
    body = hook_request("ehr-777", prefetch=stranger_prefetch())
    mutate(body)
    errors = call(viewer_client, body, status=400)
    assert field in errors, errors
    assert words in str(errors[field])
    assert IssuedCard.objects.count() == 0


def test_malformed_json_is_400(seeded, viewer_client):
    response = viewer_client.post(PATIENT_VIEW, data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_an_unknown_service_is_404(seeded, viewer_client):
    body = call(viewer_client, hook_request("108"), service="no-such-service", status=404)
    assert "No CDS service 'no-such-service'" in body["detail"]


def give_feedback(client, card: dict, outcome: str, *, service: str = "patient-view", status: int = 200, **extra):
    item = {"card": card["uuid"], "outcome": outcome, "outcomeTimestamp": timezone.now().isoformat(), **extra}
    response = client.post(f"/cds-services/{service}/feedback", {"feedback": [item]}, format="json")
    assert response.status_code == status, response.content
    return response


def test_accepted_feedback_records_the_recommendation_with_source_cds_and_its_event(seeded, clinician_client):
    [card] = call(clinician_client, hook_request("105"))["cards"]
    accepted = [{"id": card["suggestions"][0]["uuid"]}]
    give_feedback(clinician_client, card, "accepted", acceptedSuggestions=accepted)
    link = PatientRecommendation.objects.get(patient_id="105")
    assert (link.recommendation_id, link.source, link.reason) == ("weight-management", "cds", "BMI 34.6 > 30")
    assert link.provenance["via"] == "cds"
    assert link.provenance["recorded_by"] == "clinician-user"
    assert RecommendationEvent.objects.get().patient_recommendation == link
    give_feedback(clinician_client, card, "accepted", acceptedSuggestions=accepted)  # told twice: recorded once
    assert PatientRecommendation.objects.count() == 1
    assert CdsFeedback.objects.filter(patient_recommendation=link).count() == 2


def test_accepted_feedback_for_a_patient_clinrec_does_not_store_records_no_recommendation(seeded, clinician_client):
    card = call(clinician_client, hook_request("ehr-777", prefetch=stranger_prefetch()))["cards"][0]
    give_feedback(clinician_client, card, "accepted")
    assert PatientRecommendation.objects.count() == 0
    assert CdsFeedback.objects.get().outcome == "accepted"


def test_overridden_feedback_keeps_the_override_reason(seeded, clinician_client):
    [card] = call(clinician_client, hook_request("105"))["cards"]
    reason = {"reason": {"system": "http://example.org/reasons", "code": "declined", "display": "Patient declined"}}
    give_feedback(clinician_client, card, "overridden", overrideReason={**reason, "userComment": "Will reconsider"})
    feedback = CdsFeedback.objects.get()
    assert feedback.override_reason["userComment"] == "Will reconsider"
    assert feedback.override_reason_text == "Patient declined"
    assert PatientRecommendation.objects.count() == 0


@pytest.mark.parametrize(
    ("item", "words"),
    [
        ({"card": str(uuid.uuid4())}, "is not a card the patient-view service issued"),
        ({"acceptedSuggestions": [{"id": str(uuid.uuid4())}]}, "is not a suggestion of card"),
        ({"outcome": "ignored"}, "is not a valid choice"),
        ({"outcomeTimestamp": "yesterday"}, "Datetime has wrong format"),
    ],
)
def test_bad_feedback_is_400_and_stores_nothing(seeded, clinician_client, item, words):
    [card] = call(clinician_client, hook_request("105"))["cards"]
    body = {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": timezone.now().isoformat(), **item}
    response = clinician_client.post(f"{PATIENT_VIEW}/feedback", {"feedback": [body]}, format="json")
    assert response.status_code == 400
    assert words in str(response.json())
    assert CdsFeedback.objects.count() == 0
    assert PatientRecommendation.objects.count() == 0


def test_feedback_on_another_services_card_is_400(seeded, clinician_client):
    [card] = call(clinician_client, hook_request("105"))["cards"]
    give_feedback(clinician_client, card, "accepted", service="discharge-rehab", status=400)


def test_a_viewer_may_call_services_but_not_record_through_feedback(seeded, viewer_client):
    [card] = call(viewer_client, hook_request("105"))["cards"]
    response = give_feedback(viewer_client, card, "accepted", status=403)
    assert "recommendations.add_patientrecommendation" in response.json()["detail"]


def test_without_a_token_a_cds_call_is_401(seeded, anon_client):
    assert anon_client.post(PATIENT_VIEW, hook_request("108"), format="json").status_code == 401


def test_cds_feedback_analytics_counts_cards_outcomes_and_top_override_reasons(seeded, clinician_client, viewer_client):
    for outcome in ("accepted", "overridden", "overridden"):
        [card] = call(clinician_client, hook_request("105"))["cards"]
        extra = {"overrideReason": {"userComment": "Patient declined"}} if outcome == "overridden" else {}
        give_feedback(clinician_client, card, outcome, **extra)
    call(clinician_client, hook_request("105"))
    response = viewer_client.get("/api/v1/analytics/cds-feedback/")
    assert response.status_code == 200
    assert response.json() == [
        {
            "recommendation": "weight-management",
            "name": "Weight Management Program",
            "cards_shown": 4,
            "accepted": 1,
            "overridden": 2,
            "top_override_reasons": [{"reason": "Patient declined", "count": 2}],
        }
    ]


def test_an_unknown_path_under_cds_services_is_a_json_404(db, anon_client):
    response = anon_client.get("/cds-services/patient-view/cards/extra")
    assert response.status_code == 404
    assert "GET /cds-services lists the services" in response.json()["detail"]


def test_a_prefetch_call_reads_the_catalogue_once_however_many_procedures(
    seeded, viewer_client, django_assert_num_queries
):
    prefetch = stranger_prefetch()
    knee = prefetch["procedures"]["entry"][0]["resource"]
    prefetch["procedures"]["entry"] = [{"resource": knee}] * 30
    # Two savepoints and their releases, the version tokens, the user and their two permission queries (the
    # client's first request takes its role snapshot), then the catalogue, the active rule set, the definitions,
    # the active links, and the three cards in one insert.
    with django_assert_num_queries(13):
        body = call(viewer_client, hook_request("ehr-777", prefetch=prefetch))
    assert len(body["cards"]) == 3
