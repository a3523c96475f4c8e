"""FHIR in: a transaction Bundle creates or updates patients, vital signs, chronic pain and history, all or nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from interop.fhir import codes
from interop.tests.helpers import FHIR_JSON, parse_fhir, resources_of
from patients.models import Patient
from procedures.models import PatientProcedure, Procedure

PATIENT_URL = "urn:uuid:7f1a2b3c-0000-4000-8000-000000000001"


def transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def post_entry(resource: dict, full_url: str | None = None) -> dict:
    entry = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put_patient(patient_id: str, **fields) -> dict:
    resource = {"resourceType": "Patient", "id": patient_id, **fields}
    return {"fullUrl": PATIENT_URL, "resource": resource, "request": {"method": "PUT", "url": f"Patient/{patient_id}"}}


def vital(loinc: str, value: float, unit: str, subject: str = PATIENT_URL) -> dict:
    return post_entry(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": codes.LOINC, "code": loinc}]},
            "subject": {"reference": subject},
            "valueQuantity": {"value": value, "unit": unit, "system": codes.UCUM, "code": unit},
        }
    )


def chronic_pain(subject: str = PATIENT_URL, status: str = "active") -> dict:
    return post_entry(
        {
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": codes.CONDITION_CLINICAL, "code": status}]},
            "code": {"coding": [{"system": codes.SNOMED, "code": codes.CHRONIC_PAIN}]},
            "subject": {"reference": subject},
        }
    )


def procedure(subject: str = PATIENT_URL, *, days_ago: int = 10, **fields) -> dict:
    resource = {
        "resourceType": "Procedure",
        "status": "completed",
        "subject": {"reference": subject},
        "performedDateTime": (timezone.now() - timedelta(days=days_ago)).replace(microsecond=0).isoformat(),
        **fields,
    }
    return post_entry(resource)


def send(client, bundle, status: int = 200, content_type: str = FHIR_JSON) -> dict:
    payload = bundle if isinstance(bundle, str) else json.dumps(bundle)
    response = client.post("/fhir/", data=payload, content_type=content_type)
    assert response.status_code == status, response.content
    body = response.json()
    parse_fhir(body)
    return body


def evaluated(client, patient_id: str) -> set[tuple[str, str]]:
    body = client.post(f"/api/v1/patients/{patient_id}/evaluate/").json()
    return {(item["recommendation"], item["reason"]) for item in body["recommendations"]}


def test_a_new_patient_with_vitals_chronic_pain_and_a_surgery_is_stored_and_evaluates(seeded, clinician_client):
    born = (timezone.localdate() - timedelta(days=80 * 366)).isoformat()
    bundle = transaction(
        put_patient(
            "ehr-1",
            name=[{"given": ["Ada"], "family": "Byron"}],
            gender="female",
            birthDate=born,
            telecom=[{"system": "email", "value": "ada@example.org"}],
        ),
        vital("8302-2", 160, "cm"),
        vital("29463-7", 90, "kg"),
        chronic_pain(),
        procedure(code={"coding": [{"system": codes.SNOMED, "code": "609588000"}]}, note=[{"text": "Left knee."}]),
    )
    body = send(clinician_client, bundle)
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created"] * 5
    assert [e["response"]["location"] for e in body["entry"]][:4] == [
        "Patient/ehr-1",
        "Observation/ehr-1-height",
        "Observation/ehr-1-weight",
        "Condition/ehr-1-chronic-pain",
    ]
    patient = Patient.objects.get(pk="ehr-1")
    assert (patient.name, patient.sex, patient.email, patient.chronic_pain) == (
        "Ada Byron",
        "female",
        "ada@example.org",
        True,
    )
    assert (patient.height_cm, patient.weight_kg, patient.bmi) == (160, 90, 35.2)  # BMI derived as the API does
    entry = PatientProcedure.objects.get(patient=patient)
    assert (entry.procedure_id, entry.report) == ("ortho-tkr", "Left knee.")
    assert body["entry"][4]["response"]["location"] == f"Procedure/{entry.pk}"
    assert {rec for rec, _ in evaluated(clinician_client, "ehr-1")} == {
        "physical-therapy",
        "weight-management",
        "post-op-rehab",
    }


def test_an_existing_patient_is_updated_and_a_repeated_procedure_is_not_duplicated(seeded, clinician_client):
    bundle = transaction(
        vital("39156-5", 28.4, "kg/m2", subject="Patient/105"),
        procedure("Patient/105", identifier=[{"system": codes.clinrec_system("procedure"), "value": "ortho-consult"}]),
    )
    first = send(clinician_client, bundle)
    assert [e["response"]["status"] for e in first["entry"]] == ["200 OK", "201 Created"]
    assert Patient.objects.get(pk="105").bmi == 28.4
    second = send(clinician_client, bundle)
    assert [e["response"]["status"] for e in second["entry"]] == ["200 OK", "200 OK"]
    assert PatientProcedure.objects.filter(patient_id="105", procedure_id="ortho-consult").count() == 1


def test_equivalence_everything_posted_back_as_a_transaction_evaluates_the_same(
    seeded, viewer_client, clinician_client
):
    found = 0
    for patient_id in list(Patient.objects.values_list("pk", flat=True)):
        everything = viewer_client.get(f"/fhir/Patient/{patient_id}/$everything").json()
        copy_id = f"in-{patient_id}"
        entries = []
        for resource in resources_of(everything):
            if resource["resourceType"] == "ServiceRequest":
                continue
            if resource["resourceType"] == "Patient":
                entries.append(put_patient(copy_id, **{k: v for k, v in resource.items() if k not in {"id", "meta"}}))
                continue
            resource = {**resource, "subject": {"reference": f"Patient/{copy_id}"}}
            resource.pop("id")
            entries.append(post_entry(resource))
        send(clinician_client, transaction(*entries))
        expected = evaluated(clinician_client, patient_id)
        assert evaluated(clinician_client, copy_id) == expected, patient_id
        found += len(expected)
    assert found == 10  # the seeded hospital's documented findings, so the comparison is not vacuous


def test_an_unknown_procedure_can_be_added_to_the_catalogue_by_an_admin(seeded, admin_client_jwt):
    new = procedure(
        "Patient/102",
        identifier=[{"system": codes.clinrec_system("procedure"), "value": "ortho-shoulder"}],
        code={"text": "Shoulder arthroplasty"},
        category={"coding": [{"system": codes.SNOMED, "code": codes.SURGICAL_PROCEDURE}]},
        performer=[{"actor": {"display": "orthopaedics"}}],
    )
    send(admin_client_jwt, transaction(new))
    added = Procedure.objects.get(pk="ortho-shoulder")
    assert (added.name, added.department, added.is_surgery) == ("Shoulder arthroplasty", "orthopaedics", True)


def outcome(client, bundle, status: int, **kwargs) -> str:
    body = send(client, bundle, status=status, **kwargs)
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"][0]["diagnostics"]


UNKNOWN_SURGERY = {"code": {"coding": [{"system": codes.SNOMED, "code": "999999999"}]}}


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        (
            (put_patient("ehr-2", name=[{"text": "X"}]), procedure(**UNKNOWN_SURGERY)),
            "entry[1]: the Procedure matches no catalogue",
        ),
        ((put_patient("ehr-2", name=[{"text": "X"}]), vital("8302-2", "tall", "cm")), "entry[1]: Invalid Observation"),
        (
            (put_patient("ehr-2", name=[{"text": "X"}], birthDate="2999-01-01"),),
            "birth_date: Birth date cannot be in the future",
        ),
        ((put_patient("ehr-2", name=[{"text": "X"}], gender="robot"),), "entry[0]: Patient/ehr-2 sex"),
        ((put_patient("ehr-2"),), "Patient/ehr-2 name: This field is required"),
        (
            (put_patient("ehr-2", name=[{"text": "X"}]), procedure(performedDateTime="2026")),
            "must give at least a full date",
        ),
        (
            (put_patient("ehr-2", name=[{"text": "X"}]), vital("8302-2", 5, "[ft_i]")),
            "unit '[ft_i]' is not one of cm, m",
        ),
        ((put_patient("ehr-2", name=[{"text": "X"}]), vital("4548-4", 7, "%")), "final Observations of LOINC"),
        ((vital("8302-2", 170, "cm", subject="Patient/nobody"),), "subject Patient/nobody is not known to ClinRec"),
        (
            (
                put_patient("ehr-2", name=[{"text": "X"}]),
                post_entry(
                    {
                        "resourceType": "ServiceRequest",
                        "status": "active",
                        "intent": "order",
                        "subject": {"reference": "Patient/ehr-2"},
                    }
                ),
            ),
            "accepts Patient, Observation, Condition, Procedure",
        ),
        (
            (
                put_patient("ehr-2", name=[{"text": "X"}]),
                post_entry(
                    {
                        "resourceType": "Condition",
                        "subject": {"reference": PATIENT_URL},
                        "code": {"coding": [{"system": codes.SNOMED, "code": "44054006"}]},
                    }
                ),
            ),
            "one Condition only",
        ),
        ((post_entry({"resourceType": "Patient", "name": [{"text": "No id"}]}),), "a Patient needs its id"),
    ],
)
def test_an_invalid_entry_is_422_naming_it_and_nothing_is_stored(seeded, clinician_client, entries, words):
    patients, history = Patient.objects.count(), PatientProcedure.objects.count()
    assert words in outcome(clinician_client, transaction(*entries), 422)
    assert (Patient.objects.count(), PatientProcedure.objects.count()) == (patients, history)


def test_a_clinician_may_not_extend_the_catalogue(seeded, clinician_client):
    new = procedure(
        "Patient/102",
        identifier=[{"system": codes.clinrec_system("procedure"), "value": "ortho-shoulder"}],
        code={"text": "Shoulder arthroplasty"},
        performer=[{"actor": {"display": "orthopaedics"}}],
    )
    assert "your role may not add to it" in outcome(clinician_client, transaction(new), 422)
    assert not Procedure.objects.filter(pk="ortho-shoulder").exists()


@pytest.mark.parametrize(
    ("bundle", "words"),
    [
        ("{not json", "JSON parse error"),
        ({"resourceType": "Patient", "id": "x"}, "must be a FHIR Bundle"),
        ({"resourceType": "Bundle", "type": "batch", "entry": []}, "Bundle.type must be 'transaction'"),
        ({"resourceType": "Bundle", "type": "transaction", "entry": []}, "at least one entry"),
    ],
)
def test_a_body_that_is_not_a_transaction_bundle_is_400(seeded, clinician_client, bundle, words):
    assert words in outcome(clinician_client, bundle, 400)


def test_a_non_json_body_is_415(seeded, clinician_client):
    assert "Unsupported media type" in outcome(clinician_client, "<Bundle/>", 415, content_type="application/fhir+xml")


def test_a_viewer_may_not_post_a_transaction(seeded, viewer_client):
    assert "patients.add_patient" in outcome(
        viewer_client, transaction(put_patient("ehr-3", name=[{"text": "X"}])), 403
    )


def test_without_a_token_a_transaction_is_401(seeded, anon_client):
    assert "credentials" in outcome(anon_client, transaction(put_patient("ehr-3", name=[{"text": "X"}])), 401)


def test_the_transaction_is_also_served_without_the_trailing_slash(seeded, clinician_client):
    bundle = transaction(vital("39156-5", 31.0, "kg/m2", subject="Patient/101"))
    response = clinician_client.post("/fhir", data=json.dumps(bundle), content_type=FHIR_JSON)
    assert response.status_code == 200, response.content
    assert Patient.objects.get(pk="101").bmi == 31.0
