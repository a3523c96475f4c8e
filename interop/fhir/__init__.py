"""FHIR R4B: mapping ClinRec records to and from `fhir.resources.R4B` models, and the `/fhir/` endpoints."""
