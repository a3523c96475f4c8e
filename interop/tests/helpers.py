"""Shared helpers of the interop tests: re-parse FHIR JSON with the R4B models, find entries in a Bundle."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

FHIR_JSON = "application/fhir+json"


def parse_fhir(body: dict[str, Any]):
    """The body re-parsed with its R4B model (raises if ClinRec emitted anything the models reject)."""
    return get_fhir_model_class(body["resourceType"]).model_validate(body)


def resources_of(bundle: dict[str, Any], resource_type: str | None = None) -> list[dict[str, Any]]:
    resources = [entry["resource"] for entry in bundle.get("entry", [])]
    return [r for r in resources if resource_type is None or r["resourceType"] == resource_type]


def coding(concept: dict[str, Any], system: str) -> dict[str, Any] | None:
    return next((c for c in concept.get("coding", []) if c.get("system") == system), None)
