"""FHIR out: metadata, Patient, $everything and the searches, checked field by field on the seeded hospital."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.utils import timezone

from clinrec.cache import token_queries_per_request
from interop.fhir import codes
from interop.tests.helpers import FHIR_JSON, coding, parse_fhir, resources_of
from patients.models import Patient
from procedures.models import PatientProcedure
from recommendations.models import PatientRecommendation

LOINC, SNOMED = codes.LOINC, codes.SNOMED


@pytest.fixture
def evaluated(seeded, clinician_client):
    """The seeded hospital with 108, 105 and 102 evaluated: their recommendations are recorded."""
    reasons = {}
    for patient_id in ("108", "105", "102"):
        body = clinician_client.post(f"/api/v1/patients/{patient_id}/evaluate/").json()
        reasons[patient_id] = {item["recommendation"]: item["reason"] for item in body["recommendations"]}
    return reasons


def get_fhir(client, url: str, status: int = 200) -> dict:
    response = client.get(url)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    body = response.json()
    parse_fhir(body)
    return body


def by_loinc(observations: list[dict]) -> dict[str, dict]:
    return {coding(o["code"], LOINC)["code"]: o for o in observations}


def test_metadata_lists_exactly_what_is_supported(viewer_client):
    body = get_fhir(viewer_client, "/fhir/metadata")
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.3.0"
    assert "application/fhir+json" in body["format"]
    rest = body["rest"][0]
    assert rest["interaction"] == [{"code": "transaction"}]
    resources = {r["type"]: r for r in rest["resource"]}
    assert set(resources) == {"Patient", "ServiceRequest", "Procedure", "Observation", "Condition"}
    assert [op["name"] for op in resources["Patient"]["operation"]] == ["everything"]
    interactions = {kind: [i["code"] for i in r.get("interaction", [])] for kind, r in resources.items()}
    assert interactions == {
        "Patient": ["read"],
        "ServiceRequest": ["search-type"],
        "Procedure": ["search-type"],
        "Observation": ["search-type"],
        "Condition": [],  # written in a transaction only
    }
    assert {p["name"] for p in resources["ServiceRequest"]["searchParam"]} == {"patient", "status", "_count", "_offset"}
    assert {p["name"] for p in resources["Observation"]["searchParam"]} == {"patient", "code", "_count", "_offset"}
    assert {p["name"] for p in resources["Procedure"]["searchParam"]} == {"patient", "_count", "_offset"}


def test_patient_108_field_by_field(seeded, viewer_client):
    stored = Patient.objects.get(pk="108")
    body = get_fhir(viewer_client, "/fhir/Patient/108")
    assert body["id"] == "108"
    assert body["name"] == [{"text": "Henry Walsh"}]
    assert body["gender"] == "male"
    assert body["birthDate"] == stored.birth_date.isoformat()
    assert body["telecom"] == [{"system": "email", "value": "henry.walsh@example.org"}]


def test_everything_108_has_vitals_chronic_pain_history_and_recommendations(evaluated, viewer_client):
    bundle = get_fhir(viewer_client, "/fhir/Patient/108/$everything")
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle["entry"]) == 1 + 3 + 1 + 2 + 2
    [patient] = resources_of(bundle, "Patient")
    assert patient["id"] == "108"

    vitals = by_loinc(resources_of(bundle, "Observation"))
    assert set(vitals) == {"8302-2", "29463-7", "39156-5"}
    for loinc_code, value, unit in (("8302-2", 172, "cm"), ("29463-7", 80.2, "kg"), ("39156-5", 27.1, "kg/m2")):
        observation = vitals[loinc_code]
        assert observation["status"] == "final"
        assert coding(observation["category"][0], codes.OBSERVATION_CATEGORY)["code"] == "vital-signs"
        assert observation["subject"] == {"reference": "Patient/108"}
        assert observation["valueQuantity"] == {"value": value, "unit": unit, "system": codes.UCUM, "code": unit}

    [condition] = resources_of(bundle, "Condition")
    assert coding(condition["code"], SNOMED)["code"] == "82423001"
    assert coding(condition["clinicalStatus"], codes.CONDITION_CLINICAL)["code"] == "active"
    assert coding(condition["category"][0], codes.CONDITION_CATEGORY)["code"] == "problem-list-item"

    procedures = {p["identifier"][0]["value"]: p for p in resources_of(bundle, "Procedure")}
    assert set(procedures) == {"ortho-tkr", "rad-mri-knee"}
    knee = procedures["ortho-tkr"]
    assert knee["status"] == "completed"
    assert knee["identifier"][0]["system"].endswith("/procedure")
    assert coding(knee["code"], SNOMED) == {"system": SNOMED, "code": "609588000", "display": "Total knee replacement"}
    assert coding(knee["category"], SNOMED)["code"] == "387713003"
    assert knee["performer"][0]["actor"]["display"] == "orthopaedics"
    assert knee["note"] == [{"text": "Right total knee replacement, no complications."}]
    performed = timezone.datetime.fromisoformat(knee["performedDateTime"])
    assert (timezone.now() - performed).days == 45
    assert "category" not in procedures["rad-mri-knee"]  # an MRI is not surgery

    requests = {
        coding(r["code"], codes.clinrec_system("recommendation"))["code"]: r
        for r in resources_of(bundle, "ServiceRequest")
    }
    assert set(requests) == {"physical-therapy", "post-op-rehab"}
    for definition, request in requests.items():
        assert request["status"] == "active"
        assert request["intent"] == "proposal"
        assert request["subject"] == {"reference": "Patient/108"}
        assert request["reasonCode"] == [{"text": evaluated["108"][definition]}]
        assert request["authoredOn"]


def test_everything_105_has_bmi_no_condition_and_a_non_surgical_procedure(evaluated, viewer_client):
    bundle = get_fhir(viewer_client, "/fhir/Patient/105/$everything")
    assert by_loinc(resources_of(bundle, "Observation"))["39156-5"]["valueQuantity"]["value"] == 34.6
    assert resources_of(bundle, "Condition") == []
    [ecg] = resources_of(bundle, "Procedure")
    assert coding(ecg["code"], SNOMED)["code"] == "29303009"
    assert "category" not in ecg
    [request] = resources_of(bundle, "ServiceRequest")
    assert request["reasonCode"] == [{"text": "BMI 34.6 > 30"}]
    [patient] = resources_of(bundle, "Patient")
    assert patient["gender"] == "female"


def test_everything_102_has_the_acl_reconstruction_and_post_op_rehab(evaluated, viewer_client):
    bundle = get_fhir(viewer_client, "/fhir/Patient/102/$everything")
    [acl] = resources_of(bundle, "Procedure")
    assert acl["identifier"][0]["value"] == "ortho-acl"
    assert coding(acl["category"], SNOMED)["code"] == "387713003"
    [request] = resources_of(bundle, "ServiceRequest")
    assert coding(request["code"], codes.clinrec_system("recommendation"))["code"] == "post-op-rehab"
    assert resources_of(bundle, "Condition") == []
    assert "telecom" not in resources_of(bundle, "Patient")[0]


def test_service_request_search_filters_by_status(evaluated, viewer_client):
    link = PatientRecommendation.objects.get(patient_id="108", recommendation_id="physical-therapy")
    link.status = "dismissed"
    link.save()
    every = get_fhir(viewer_client, "/fhir/ServiceRequest?patient=108")
    assert sorted(r["status"] for r in resources_of(every)) == ["active", "revoked"]
    active = get_fhir(viewer_client, "/fhir/ServiceRequest?patient=Patient/108&status=active")
    assert [r["id"] for r in resources_of(active)] != [str(link.pk)]
    assert active["total"] == 1
    revoked = get_fhir(viewer_client, "/fhir/ServiceRequest?patient=108&status=revoked")
    assert [r["id"] for r in resources_of(revoked)] == [str(link.pk)]


def test_procedure_search_pages_with_count_and_next_links(seeded, viewer_client):
    first = get_fhir(viewer_client, "/fhir/Procedure?patient=108&_count=1")
    assert first["total"] == 2 and len(first["entry"]) == 1
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "_count=1" in links["next"] and "_offset=1" in links["next"]
    second = get_fhir(viewer_client, links["next"].replace("http://testserver", ""))
    assert len(second["entry"]) == 1
    assert "next" not in {link["relation"] for link in second["link"]}
    ids = {resources_of(page)[0]["identifier"][0]["value"] for page in (first, second)}
    assert ids == {"rad-mri-knee", "ortho-tkr"}


def test_observation_search_by_loinc_code(seeded, viewer_client):
    bundle = get_fhir(viewer_client, "/fhir/Observation?patient=105&code=http://loinc.org|39156-5")
    [bmi] = resources_of(bundle)
    assert bmi["valueQuantity"]["value"] == 34.6
    both = get_fhir(viewer_client, "/fhir/Observation?patient=105&code=8302-2,29463-7")
    assert both["total"] == 2


def test_search_of_an_unknown_patient_is_an_empty_searchset(seeded, viewer_client):
    assert get_fhir(viewer_client, "/fhir/Procedure?patient=nobody")["total"] == 0
    assert get_fhir(viewer_client, "/fhir/Observation?patient=nobody")["total"] == 0


def test_a_patient_without_measurements_has_no_observations(db, viewer_client):
    Patient.objects.create(id="p1", name="No Data", birth_date=date(1980, 1, 1))
    assert get_fhir(viewer_client, "/fhir/Observation?patient=p1")["total"] == 0


def outcome(response, status: int) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    parse_fhir(body)
    return body["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/fhir/Patient/nobody", 404, "No Patient with id 'nobody'"),
        ("/fhir/Patient/nobody/$everything", 404, "No Patient"),
        ("/fhir/Procedure", 400, "patient parameter is required"),
        ("/fhir/Procedure?patient=108&_count=0", 400, "_count must be between 1 and 500"),
        ("/fhir/Procedure?patient=108&_count=x", 400, "_count must be a whole number"),
        ("/fhir/Procedure?patient=108&date=2020", 400, "Unknown search parameter(s): date"),
        ("/fhir/ServiceRequest?patient=108&status=dismissed", 400, "status must be one of"),
        ("/fhir/Observation?patient=108&code=1234-5", 400, "'1234-5' is not an observation"),
        ("/fhir/Observation?patient=108&code=http://snomed.info/sct|8302-2", 400, "only http://loinc.org"),
        ("/fhir/Encounter?patient=108", 404, "no endpoint at /fhir/Encounter"),
    ],
)
def test_errors_are_operation_outcomes(seeded, viewer_client, url, status, words):
    assert words in outcome(viewer_client.get(url), status)


def test_without_a_token_is_401_with_a_bearer_challenge(seeded, anon_client):
    response = anon_client.get("/fhir/Patient/108")
    assert "credentials were not provided" in outcome(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_user_without_a_role_is_403(seeded, no_role_client):
    assert "needs the patients.view_patient permission" in outcome(no_role_client.get("/fhir/Patient/108"), 403)


def test_a_write_method_on_a_read_endpoint_is_405(seeded, viewer_client):
    assert 'Method "DELETE" not allowed' in outcome(viewer_client.delete("/fhir/Patient/108"), 405)


def test_asking_for_xml_is_406(seeded, viewer_client):
    assert "Could not satisfy the request Accept header" in outcome(
        viewer_client.get("/fhir/Patient/108", HTTP_ACCEPT="application/fhir+xml"), 406
    )


def test_plain_json_is_served_when_asked_for(seeded, viewer_client):
    response = viewer_client.get("/fhir/Patient/108", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["resourceType"] == "Patient"


def test_everything_costs_the_same_queries_however_long_the_history(seeded, viewer_client, django_assert_num_queries):
    # The request's savepoint and its release, then one query each for the patient, the history (with its
    # catalogue entries) and the recommendations (with their definitions); the viewer's role snapshot (user and
    # permissions, security/authentication.py) is taken by the first request.
    viewer_client.get("/fhir/metadata")
    with django_assert_num_queries(5 + token_queries_per_request()):
        viewer_client.get("/fhir/Patient/113/$everything")
    for _ in range(20):
        PatientProcedure.objects.create(patient_id="113", procedure_id="ortho-consult", performed_at=timezone.now())
    with django_assert_num_queries(5 + token_queries_per_request()):
        body = viewer_client.get("/fhir/Patient/113/$everything").json()
    assert len(resources_of(body, "Procedure")) == 21


def provenance_parts(service_request: dict) -> dict:
    [extension] = [e for e in service_request.get("extension", []) if e["url"].endswith("recommendation-provenance")]
    return {part["url"]: next(v for k, v in part.items() if k.startswith("value")) for part in extension["extension"]}


def test_service_requests_carry_the_provenance_of_the_rule_that_made_them(evaluated, viewer_client):
    bundle = get_fhir(viewer_client, "/fhir/ServiceRequest?patient=108")
    by_code = {
        coding(r["code"], codes.clinrec_system("recommendation"))["code"]: r
        for r in resources_of(bundle, "ServiceRequest")
    }
    stored = PatientRecommendation.objects.get(patient_id="108", recommendation_id="physical-therapy").provenance
    parts = provenance_parts(by_code["physical-therapy"])
    assert parts["source"] == "rule"
    assert parts["rule"] == "physical_therapy"
    assert parts["ruleSet"] == stored["rule_set"] == 1
    assert parts["engineVersion"] == stored["engine_version"]
    assert json.loads(parts["facts"]) == stored["facts"]
    assert json.loads(parts["facts"])["chronic_pain"] is True
    rehab = json.loads(provenance_parts(by_code["post-op-rehab"])["facts"])
    assert rehab["window_days"] == 90
    assert rehab["procedure"]["department"] == "orthopaedics"


def test_a_merged_patient_is_inactive_and_replaced_by_the_one_it_was_merged_into(seeded, viewer_client):
    from recommendations.services.merge import merge_patients

    duplicate = Patient.objects.create(id="108-dup", name="Henry Walsh", birth_date=date(1948, 1, 1), sex="male")
    merge_patients(target_id="108", source_id=duplicate.pk)

    body = get_fhir(viewer_client, "/fhir/Patient/108-dup")
    assert body["active"] is False
    assert body["link"] == [{"other": {"reference": "Patient/108"}, "type": "replaced-by"}]
    live = get_fhir(viewer_client, "/fhir/Patient/108")
    assert "link" not in live and "active" not in live
