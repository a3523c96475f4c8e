"""The hospital's standards: FHIR R4B both ways and a CDS Hooks 2.0 service (an app of its own: it reads the others)."""
