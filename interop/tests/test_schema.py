"""The OpenAPI schema documents the FHIR and CDS Hooks endpoints, with the CDS Hooks JWT as an authentication."""

from __future__ import annotations

from clinrec.tests.test_schema import generate_schema


def test_schema_documents_the_fhir_and_cds_endpoints_without_warnings(tmp_path):
    schema, err = generate_schema(tmp_path / "schema.yml")
    operations = {
        f"{method.upper()} {path}": operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post"}
    }
    expected = {
        "GET /fhir/metadata",
        "GET /fhir/Patient/{id}",
        "GET /fhir/Patient/{id}/$everything",
        "GET /fhir/ServiceRequest",
        "GET /fhir/Procedure",
        "GET /fhir/Observation",
        "POST /fhir/",
        "GET /cds-services",
        "POST /cds-services/{service_id}",
        "POST /cds-services/{service_id}/feedback",
        "GET /api/v1/analytics/cds-feedback/",
    }
    assert expected <= set(operations), err
    for name in ("POST /cds-services/{service_id}", "POST /cds-services/{service_id}/feedback", "GET /cds-services"):
        assert {"cdsHooksJwt": []} in operations[name]["security"], name
    assert "application/fhir+json" in operations["GET /fhir/Patient/{id}"]["responses"]["200"]["content"]
    assert {"400", "401", "403", "404", "412"} <= set(operations["POST /cds-services/{service_id}"]["responses"])
    assert {"401", "403", "422"} <= set(operations["POST /fhir/"]["responses"])
    assert schema["components"]["securitySchemes"]["cdsHooksJwt"]["scheme"] == "bearer"
