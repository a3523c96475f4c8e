"""The code systems and codes ClinRec speaks in FHIR: LOINC vital signs, SNOMED CT, and ClinRec's own systems."""

from __future__ import annotations

from typing import NamedTuple

from django.conf import settings

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

CHRONIC_PAIN = "82423001"
CHRONIC_PAIN_DISPLAY = "Chronic pain"
SURGICAL_PROCEDURE = "387713003"
SURGICAL_PROCEDURE_DISPLAY = "Surgical procedure"


class VitalSign(NamedTuple):
    """A measurement ClinRec keeps on the patient: its LOINC code, the patient field and the UCUM unit."""

    loinc: str
    display: str
    field: str
    unit: str
    id_suffix: str


HEIGHT = VitalSign("8302-2", "Body height", "height_cm", "cm", "height")
WEIGHT = VitalSign("29463-7", "Body weight", "weight_kg", "kg", "weight")
BMI = VitalSign("39156-5", "Body mass index (BMI) [Ratio]", "bmi", "kg/m2", "bmi")
VITAL_SIGNS = (HEIGHT, WEIGHT, BMI)
VITAL_SIGNS_BY_LOINC = {sign.loinc: sign for sign in VITAL_SIGNS}


def clinrec_system(kind: str) -> str:
    """ClinRec's identifier/code system for `kind` (`procedure`, `recommendation`, ...), from settings."""
    return f"{settings.FHIR_SYSTEM_BASE}/{kind}"


def is_clinrec_system(system: str | None, kind: str) -> bool:
    """An identifier system naming ClinRec's `kind` ids: ours, or any system ending in `/<kind>`."""
    return bool(system) and (system == clinrec_system(kind) or system.rstrip("/").endswith(f"/{kind}"))
