"""The CDS services ClinRec offers (what discovery lists) and the prefetch each one asks the EHR for."""

from __future__ import annotations

from typing import NamedTuple

from interop.fhir import codes

PATIENT_ID = "{{context.patientId}}"

# key → (FHIR query the EHR runs, the resource type it returns: a Patient, or a Bundle of that type)
PREFETCH: dict[str, tuple[str, str]] = {
    "patient": (f"Patient/{PATIENT_ID}", "Patient"),
    "procedures": (f"Procedure?patient={PATIENT_ID}", "Procedure"),
    "bmi": (f"Observation?patient={PATIENT_ID}&code={codes.LOINC}|{codes.BMI.loinc}", "Observation"),
    "conditions": (
        f"Condition?patient={PATIENT_ID}&code={codes.SNOMED}|{codes.CHRONIC_PAIN}&clinical-status=active",
        "Condition",
    ),
}


class CdsService(NamedTuple):
    id: str
    hook: str
    title: str
    description: str
    # The context fields this hook's requests must carry.
    context: tuple[str, ...]


SERVICES: dict[str, CdsService] = {
    service.id: service
    for service in (
        CdsService(
            "patient-view",
            "patient-view",
            "ClinRec care programme recommendations",
            "When a chart is opened: the care programmes ClinRec's rules recommend (physical therapy, weight "
            "management, post-operative rehabilitation), each with the facts that made it fire.",
            ("patientId",),
        ),
        CdsService(
            "discharge-rehab",
            "encounter-discharge",
            "ClinRec rehabilitation at discharge",
            "At discharge: the programmes to arrange before the patient leaves, post-operative rehabilitation "
            "after a recent surgery above all.",
            ("patientId", "encounterId"),
        ),
    )
}


def discovery() -> dict:
    """The body of `GET /cds-services` (CDS Hooks 2.0 discovery response)."""
    return {
        "services": [
            {
                "id": service.id,
                "hook": service.hook,
                "title": service.title,
                "description": service.description,
                "prefetch": {key: query for key, (query, _) in PREFETCH.items()},
                "usageRequirements": "Register the EHR's issuer and JWKS with ClinRec's administrator.",
            }
            for service in SERVICES.values()
        ]
    }
