"""FHIR R4B resources read back into ClinRec's terms: catalogue procedures, vital signs, chronic pain, snapshots.

Shared by the CDS services (which evaluate the resources an EHR prefetched, storing nothing) and the FHIR
transaction (which stores them), so both read a resource the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.procedure import Procedure as FhirProcedure
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError as PydanticValidationError

from interop.fhir import codes
from patients.services import compute_bmi
from procedures.models import Procedure
from recommendations.engine import PatientSnapshot, ProcedureFact

# The units ClinRec accepts for each measurement (UCUM codes), as the factor to its own unit.
UNIT_FACTORS = {
    "height_cm": {"cm": 1.0, "m": 100.0},
    "weight_kg": {"kg": 1.0, "g": 0.001},
    "bmi": {"kg/m2": 1.0},
}


class UnreadableResource(ValueError):
    """A resource ClinRec cannot read: invalid FHIR, or valid but missing what ClinRec needs (the message says)."""


def validation_message(error: PydanticValidationError) -> str:
    """The first problems the R4B models found, each with its element path."""
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'resource'}: {item['msg']}" for item in error.errors()[:5]
    )


def parse_resource(value: Any) -> Resource:
    """FHIR JSON parsed with the R4B model its resourceType names; UnreadableResource saying why it is not valid."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        raise UnreadableResource("Must be a FHIR resource (a JSON object with a resourceType).")
    kind = value["resourceType"]
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError):
        raise UnreadableResource(f"Unknown FHIR resource type {kind!r}.") from None
    try:
        return model.model_validate(value)
    except PydanticValidationError as error:
        raise UnreadableResource(f"Invalid {kind}: {validation_message(error)}") from None


def codes_of(concept, system: str) -> list[str]:
    return [c.code for c in (concept.coding or []) if c.system == system and c.code] if concept else []


def catalogue_ids(resource: FhirProcedure) -> list[str]:
    """ClinRec catalogue ids a Procedure names: identifiers, then codings, in ClinRec's `/procedure` system."""
    ids = [i.value for i in resource.identifier or [] if codes.is_clinrec_system(i.system, "procedure") and i.value]
    if resource.code:
        ids += [c.code for c in resource.code.coding or [] if codes.is_clinrec_system(c.system, "procedure") and c.code]
    return ids


class Catalogue:
    """The catalogue entries some Procedure resources name, read in one query, matched by id then SNOMED CT code."""

    def __init__(self, resources: Iterable[FhirProcedure]) -> None:
        resources = list(resources)
        ids = {pk for resource in resources for pk in catalogue_ids(resource)}
        snomed = {code for resource in resources for code in codes_of(resource.code, codes.SNOMED)}
        found = (
            list(Procedure.objects.filter(Q(pk__in=ids) | Q(code__in=snomed)).order_by("id")) if ids or snomed else []
        )
        self.by_id = {procedure.pk: procedure for procedure in found}
        self.by_code: dict[str, Procedure] = {}
        for procedure in found:
            if procedure.code:
                self.by_code.setdefault(procedure.code, procedure)

    def match(self, resource: FhirProcedure) -> Procedure | None:
        for procedure_id in catalogue_ids(resource):
            if procedure_id in self.by_id:
                return self.by_id[procedure_id]
        return next(
            (self.by_code[code] for code in codes_of(resource.code, codes.SNOMED) if code in self.by_code), None
        )


def catalogue_procedure(resource: FhirProcedure) -> Procedure | None:
    """The catalogue entry a Procedure names: by ClinRec identifier (system ending in /procedure), then code."""
    return Catalogue([resource]).match(resource)


def performed_at(resource: FhirProcedure) -> datetime:
    when = resource.performedDateTime or (resource.performedPeriod.start if resource.performedPeriod else None)
    if when is None:
        raise UnreadableResource("Procedure.performedDateTime is required.")
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    if isinstance(when, date):
        return datetime(when.year, when.month, when.day, tzinfo=UTC)  # a date only: its start
    # A year or a month ("2024", "2024-05"): too vague to say whether it falls in a rehabilitation window.
    raise UnreadableResource(f"Procedure.performedDateTime {when!r} must give at least a full date.")


def procedure_department(resource: FhirProcedure) -> str:
    for performer in resource.performer or []:
        if performer.actor and performer.actor.display:
            return performer.actor.display
    return ""


def is_surgical(resource: FhirProcedure) -> bool:
    return codes.SURGICAL_PROCEDURE in codes_of(resource.category, codes.SNOMED)


def procedure_name(resource: FhirProcedure) -> str:
    if resource.code and resource.code.text:
        return resource.code.text
    return next((c.display for c in (resource.code.coding or []) if c.display), "") if resource.code else ""


def procedure_fact(resource: FhirProcedure, *, catalogue: Catalogue | None = None) -> ProcedureFact | None:
    """What the post-op rule reads of a Procedure; the catalogue's facts when it knows the procedure.

    A procedure not completed (planned, stopped, entered in error) is not part of the history: None.
    """
    if resource.status != "completed":
        return None
    known = (catalogue or Catalogue([resource])).match(resource)
    if known is not None:
        return ProcedureFact(
            name=known.name,
            department=known.department,
            is_surgery=known.is_surgery,
            performed_at=performed_at(resource),
        )
    return ProcedureFact(
        name=procedure_name(resource) or "unnamed procedure",
        department=procedure_department(resource),
        is_surgery=is_surgical(resource),
        performed_at=performed_at(resource),
    )


def vital_sign(resource: Observation) -> tuple[codes.VitalSign, float] | None:
    """(which measurement, its value in ClinRec's unit) of a final height/weight/BMI Observation, else None."""
    sign = next(
        (
            codes.VITAL_SIGNS_BY_LOINC[c]
            for c in codes_of(resource.code, codes.LOINC)
            if c in codes.VITAL_SIGNS_BY_LOINC
        ),
        None,
    )
    if sign is None or resource.status not in {"final", "amended", "corrected"}:
        return None
    quantity = resource.valueQuantity
    if quantity is None or quantity.value is None:
        raise UnreadableResource(f"Observation {sign.display} needs a valueQuantity with a value.")
    unit = quantity.code or quantity.unit or sign.unit
    factors = UNIT_FACTORS[sign.field]
    if unit not in factors:
        raise UnreadableResource(
            f"Observation {sign.display}: unit {unit!r} is not one of {', '.join(factors)} (UCUM)."
        )
    return sign, round(float(Decimal(quantity.value)) * factors[unit], 4)


def observation_time(resource: Observation) -> datetime:
    when = resource.effectiveDateTime or resource.issued
    if isinstance(when, datetime):
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def chronic_pain_status(resource: Condition) -> bool | None:
    """True for an active chronic-pain Condition, False for one resolved or inactive, None for other conditions."""
    if codes.CHRONIC_PAIN not in codes_of(resource.code, codes.SNOMED):
        return None
    if codes_of(resource.verificationStatus, codes.CONDITION_VERIFICATION) in (["refuted"], ["entered-in-error"]):
        return False
    clinical = codes_of(resource.clinicalStatus, codes.CONDITION_CLINICAL)
    return not clinical or clinical[0] in {"active", "recurrence", "relapse"}


def birth_date(resource: FhirPatient) -> date | None:
    """The full birth date; a year or month alone ("1950") is refused rather than read as unknown."""
    value = resource.birthDate
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    raise UnreadableResource(f"Patient.birthDate {value!r} must be a full date (YYYY-MM-DD) for age rules.")


def snapshot_from_resources(patient: FhirPatient, resources: Iterable[Resource]) -> PatientSnapshot:
    """The engine's snapshot of a patient described by FHIR resources alone (nothing read from ClinRec's records
    but the procedure catalogue)."""
    resources = list(resources)
    catalogue = Catalogue(r for r in resources if r.get_resource_type() == "Procedure")
    measurements: dict[str, tuple[datetime, float]] = {}
    chronic_pain = False
    procedures = []
    for resource in resources:
        kind = resource.get_resource_type()
        if kind == "Observation":
            found = vital_sign(resource)
            if found is not None:
                sign, value = found
                when = observation_time(resource)
                if sign.field not in measurements or when >= measurements[sign.field][0]:
                    measurements[sign.field] = (when, value)
        elif kind == "Condition":
            chronic_pain = chronic_pain or bool(chronic_pain_status(resource))
        elif kind == "Procedure":
            fact = procedure_fact(resource, catalogue=catalogue)
            if fact is not None:
                procedures.append(fact)
    values = {field: value for field, (_, value) in measurements.items()}
    bmi = values.get("bmi")
    if bmi is None:  # as ClinRec derives it when a patient is stored with height and weight only
        bmi = compute_bmi(height_cm=values.get("height_cm"), weight_kg=values.get("weight_kg"))
    return PatientSnapshot(
        patient_id=patient.id or "",
        birth_date=birth_date(patient),
        bmi=round(bmi, 1) if bmi is not None else None,
        chronic_pain=chronic_pain,
        procedures=tuple(sorted(procedures, key=lambda fact: fact.performed_at, reverse=True)),
    )
