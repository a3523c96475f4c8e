"""ClinRec records as FHIR R4B resources, built and validated with the `fhir.resources.R4B` models.

One function per resource kind; every function returns a model instance (so whatever it builds has been
checked by the R4B models), and `as_json` turns one into the JSON ClinRec sends. `service_request_for(link)`
is the one place a patient recommendation becomes a `ServiceRequest`: the FHIR and CDS views use it, and so
may any consumer that pushes recommendations to a FHIR server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.procedure import Procedure as FhirProcedure
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest

from interop.fhir import codes
from patients.models import Patient
from procedures.models import PatientProcedure, Procedure
from recommendations.models import PatientRecommendation, Recommendation, RecommendationStatus

# A patient recommendation's status as a ServiceRequest status (request-status value set).
SERVICE_REQUEST_STATUS = {
    RecommendationStatus.ACTIVE: "active",
    RecommendationStatus.COMPLETED: "completed",
    RecommendationStatus.DISMISSED: "revoked",
}
FHIR_ID_MAX = 64


def as_json(resource: Resource) -> dict[str, Any]:
    """The resource as FHIR JSON (the models' own serializer: aliases, no empty elements)."""
    return json.loads(resource.model_dump_json(exclude_none=True))


def derived_id(patient_id: str, suffix: str) -> str:
    """A stable resource id for a fact kept on the patient row (its height, its chronic pain...).

    `<patient>-<suffix>` when that fits the 64 characters of a FHIR id, else a digest of it.
    """
    candidate = f"{patient_id}-{suffix}"
    if len(candidate) <= FHIR_ID_MAX:
        return candidate
    return f"{hashlib.sha256(candidate.encode()).hexdigest()[:48]}-{suffix}"[:FHIR_ID_MAX]


def patient_reference(patient_id: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


def patient_resource(patient: Patient) -> FhirPatient:
    """Patient: id, name, birthDate, gender (ClinRec's sex values are the administrative-gender codes), e-mail."""
    return FhirPatient(
        id=patient.pk,
        name=[{"text": patient.name}],
        gender=patient.sex,
        birthDate=patient.birth_date,
        telecom=[{"system": "email", "value": patient.email}] if patient.email else None,
        meta={"lastUpdated": patient.updated_at} if patient.updated_at else None,
        # A tombstone of a merge: no longer active, and `replaced-by` points at the record that carries on.
        active=False if patient.merged_into_id else None,
        link=(
            [{"other": patient_reference(patient.merged_into_id), "type": "replaced-by"}]
            if patient.merged_into_id
            else None
        ),
    )


def vital_sign_observation(patient: Patient, sign: codes.VitalSign) -> Observation | None:
    """One vital-signs Observation (final, UCUM unit) for a measurement kept on the patient; None if not recorded."""
    value = getattr(patient, sign.field)
    if value is None:
        return None
    return Observation(
        id=derived_id(patient.pk, sign.id_suffix),
        status="final",
        category=[
            {"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
        ],
        code={"coding": [{"system": codes.LOINC, "code": sign.loinc, "display": sign.display}], "text": sign.display},
        subject=patient_reference(patient.pk),
        effectiveDateTime=patient.updated_at,
        valueQuantity={"value": value, "unit": sign.unit, "system": codes.UCUM, "code": sign.unit},
    )


def observation_resources(patient: Patient, *, loinc: Iterable[str] | None = None) -> list[Observation]:
    """The patient's recorded height, weight and BMI (only the LOINC codes asked for, when given)."""
    wanted = set(loinc) if loinc is not None else None
    observations = []
    for sign in codes.VITAL_SIGNS:
        if wanted is not None and sign.loinc not in wanted:
            continue
        observation = vital_sign_observation(patient, sign)
        if observation is not None:
            observations.append(observation)
    return observations


def chronic_pain_condition(patient: Patient) -> Condition | None:
    """The chronic-pain problem-list Condition (SNOMED CT 82423001, active) when the patient has it recorded."""
    if not patient.chronic_pain:
        return None
    return Condition(
        id=derived_id(patient.pk, "chronic-pain"),
        clinicalStatus={"coding": [{"system": codes.CONDITION_CLINICAL, "code": "active"}]},
        verificationStatus={"coding": [{"system": codes.CONDITION_VERIFICATION, "code": "confirmed"}]},
        category=[
            {
                "coding": [
                    {"system": codes.CONDITION_CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}
                ]
            }
        ],
        code={
            "coding": [{"system": codes.SNOMED, "code": codes.CHRONIC_PAIN, "display": codes.CHRONIC_PAIN_DISPLAY}],
            "text": codes.CHRONIC_PAIN_DISPLAY,
        },
        subject=patient_reference(patient.pk),
        recordedDate=patient.updated_at,
    )


def procedure_code(procedure: Procedure) -> dict[str, Any]:
    """The catalogue entry as a CodeableConcept: SNOMED CT when it has a code, and always ClinRec's own id."""
    coding = []
    if procedure.code:
        coding.append({"system": codes.SNOMED, "code": procedure.code, "display": procedure.name})
    coding.append({"system": codes.clinrec_system("procedure"), "code": procedure.pk, "display": procedure.name})
    return {"coding": coding, "text": procedure.name}


def procedure_resource(entry: PatientProcedure) -> FhirProcedure:
    """A history entry: completed, when, what (catalogue code and id), surgical category, department, report."""
    procedure = entry.procedure
    return FhirProcedure(
        id=str(entry.pk),
        identifier=[{"system": codes.clinrec_system("procedure"), "value": procedure.pk}],
        status="completed",
        category=(
            {
                "coding": [
                    {
                        "system": codes.SNOMED,
                        "code": codes.SURGICAL_PROCEDURE,
                        "display": codes.SURGICAL_PROCEDURE_DISPLAY,
                    }
                ]
            }
            if procedure.is_surgery
            else None
        ),
        code=procedure_code(procedure),
        subject=patient_reference(entry.patient_id),
        performedDateTime=entry.performed_at,
        # The performing department, as the organisation that performed it (FHIR has no department element).
        performer=[
            {
                "function": {"text": "performing department"},
                "actor": {"type": "Organization", "display": procedure.department},
            }
        ],
        note=[{"text": entry.report}] if entry.report else None,
    )


def recommendation_code(definition: Recommendation) -> dict[str, Any]:
    return {
        "coding": [
            {"system": codes.clinrec_system("recommendation"), "code": definition.pk, "display": definition.name}
        ],
        "text": definition.name,
    }


PROVENANCE_EXTENSION = "StructureDefinition/recommendation-provenance"


def service_request_provenance(link: PatientRecommendation) -> list[Extension]:
    """How the recommendation was reached, as one complex extension of its ServiceRequest.

    Sub-extensions: `source` (rule, manual, cds), `rule`, `ruleSet` (the version whose parameters were used),
    `engineVersion`, `facts` (the facts the rule read, as JSON), `recordedBy` and `via` (for one made by hand).
    A recommendation recorded before provenance existed has none.
    """
    provenance = link.provenance or {}
    parts: list[dict[str, Any]] = []
    for key, url, kind in (
        ("source", "source", "valueCode"),
        ("rule", "rule", "valueCode"),
        ("rule_set", "ruleSet", "valueInteger"),
        ("engine_version", "engineVersion", "valueString"),
        ("recorded_by", "recordedBy", "valueString"),
        ("via", "via", "valueCode"),
    ):
        if provenance.get(key) not in (None, ""):
            parts.append({"url": url, kind: provenance[key]})
    if provenance.get("facts"):
        parts.append({"url": "facts", "valueString": json.dumps(provenance["facts"], sort_keys=True, default=str)})
    if not parts:
        return []
    return [Extension(url=f"{codes.clinrec_system(PROVENANCE_EXTENSION)}", extension=parts)]


def service_request_for(link: PatientRecommendation) -> ServiceRequest:
    """A patient recommendation as a ServiceRequest: status from the link, intent proposal, the rule's reason."""
    return ServiceRequest(
        id=str(link.pk),
        status=SERVICE_REQUEST_STATUS[link.status],
        intent="proposal",
        code=recommendation_code(link.recommendation),
        subject=patient_reference(link.patient_id),
        authoredOn=link.recommended_at,
        reasonCode=[{"text": link.reason}] if link.reason else None,
        extension=service_request_provenance(link) or None,
    )


def proposed_service_request(
    *, patient_id: str, definition: Recommendation, reason: str, at: datetime
) -> ServiceRequest:
    """The ServiceRequest a CDS card proposes to create: a draft proposal, not yet recorded anywhere."""
    return ServiceRequest(
        status="draft",
        intent="proposal",
        code=recommendation_code(definition),
        subject=patient_reference(patient_id),
        authoredOn=at,
        reasonCode=[{"text": reason}] if reason else None,
    )


def everything(patient: Patient) -> list[Resource]:
    """What `Patient/{id}/$everything` returns: the patient, vital signs, chronic pain, history, recommendations."""
    resources: list[Resource] = [patient_resource(patient), *observation_resources(patient)]
    condition = chronic_pain_condition(patient)
    if condition is not None:
        resources.append(condition)
    history = (
        PatientProcedure.objects.filter(patient=patient).select_related("procedure").order_by("performed_at", "id")
    )
    resources.extend(procedure_resource(entry) for entry in history)
    links = (
        PatientRecommendation.objects.filter(patient=patient)
        .select_related("recommendation")
        .order_by("recommended_at", "id")
    )
    resources.extend(service_request_for(link) for link in links)
    return resources


def searchset(
    resources: Iterable[Resource], *, total: int, self_url: str, next_url: str | None = None, base_url: str = ""
) -> Bundle:
    """A `searchset` Bundle of `resources`, with its self and next links."""
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return Bundle(
        type="searchset",
        total=total,
        link=links,
        entry=[
            {
                "fullUrl": f"{base_url}{resource.get_resource_type()}/{resource.id}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    )
