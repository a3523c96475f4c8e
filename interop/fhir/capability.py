"""The CapabilityStatement of `/fhir/metadata`: exactly the interactions and searches ClinRec serves."""

from __future__ import annotations

from django.utils import timezone
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from interop.fhir import codes

EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
# Writes go through the system-level transaction only (POST /fhir/), never a type's own create or update.
IN_TRANSACTION = "In a transaction Bundle (POST /fhir/): {}."
CODE_DOC = f"LOINC body height, weight or BMI, e.g. {codes.LOINC}|{codes.BMI.loinc}."
PAGING = [
    {"name": "_count", "type": "number", "documentation": "Page size (default 50, at most 500)."},
    {"name": "_offset", "type": "number", "documentation": "Entries to skip; the `next` link carries it."},
]


def capability_statement(*, base_url: str) -> CapabilityStatement:
    patient_search = {"name": "patient", "type": "reference", "documentation": "Required: the patient's id."}
    return CapabilityStatement(
        status="active",
        date=timezone.now(),
        publisher="ClinRec",
        kind="instance",
        software={"name": "ClinRec"},
        implementation={"description": "ClinRec clinical recommendation service", "url": base_url},
        fhirVersion="4.3.0",
        format=["application/fhir+json", "json"],
        rest=[
            {
                "mode": "server",
                "documentation": "Requires a ClinRec bearer token (`Authorization: Bearer <access>`); "
                "reads need the viewer role, the transaction the clinician role.",
                "security": {
                    "description": "OAuth2-style bearer JWT from POST /api/v1/security/token/.",
                },
                "interaction": [{"code": "transaction"}],
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}],
                        "documentation": IN_TRANSACTION.format("created or updated (PUT Patient/<id>)"),
                        "operation": [{"name": "everything", "definition": EVERYTHING}],
                    },
                    {
                        "type": "ServiceRequest",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            patient_search,
                            {
                                "name": "status",
                                "type": "token",
                                "documentation": "active, completed or revoked (a dismissed recommendation).",
                            },
                            *PAGING,
                        ],
                    },
                    {
                        "type": "Procedure",
                        "interaction": [{"code": "search-type"}],
                        "documentation": IN_TRANSACTION.format("added to the history (completed ones)"),
                        "searchParam": [patient_search, *PAGING],
                    },
                    {
                        "type": "Observation",
                        "interaction": [{"code": "search-type"}],
                        "documentation": IN_TRANSACTION.format("recorded (body height, weight and BMI)"),
                        "searchParam": [
                            patient_search,
                            {
                                "name": "code",
                                "type": "token",
                                "documentation": CODE_DOC,
                            },
                            *PAGING,
                        ],
                    },
                    {
                        "type": "Condition",
                        "documentation": IN_TRANSACTION.format(
                            f"recorded: chronic pain only (SNOMED CT {codes.CHRONIC_PAIN})"
                        ),
                    },
                ],
            }
        ],
    )
