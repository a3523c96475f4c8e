"""The exported schema lets a client chain create → read → update → delete: OpenAPI links on every resource,
and the refusals of the HTTP layer (413, 414, 415) documented on every operation."""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

RESOURCES = ["patients", "procedures", "patient-procedures", "recommendations", "patient-recommendations"]


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operation_ids(schema: dict, path: str) -> set[str]:
    return {
        op["operationId"]
        for method, op in schema["paths"][path].items()
        if method in {"get", "put", "patch", "delete", "post"}
    }


@pytest.mark.parametrize("resource", RESOURCES)
def test_create_links_to_read_replace_update_and_delete_of_the_new_item(schema, resource):
    created = schema["paths"][f"/api/v1/{resource}/"]["post"]["responses"]["201"]
    item = f"/api/v1/{resource}/{{id}}/"
    links = created["links"]
    assert {link["operationId"] for link in links.values()} >= operation_ids(schema, item)
    assert all(link["parameters"] == {"id": "$response.body#/id"} for link in links.values())
    methods = {method for method in schema["paths"][item] if method != "parameters"}
    assert methods >= {"get", "put", "patch", "delete"}


@pytest.mark.parametrize("resource", RESOURCES)
def test_read_and_update_link_on_to_the_same_item(schema, resource):
    item = schema["paths"][f"/api/v1/{resource}/{{id}}/"]
    for method in ("get", "put", "patch"):
        links = item[method]["responses"]["200"]["links"]
        assert f"{resource.replace('-', '_')}_destroy" in links


def test_patient_create_links_to_its_evaluation(schema):
    links = schema["paths"]["/api/v1/patients/"]["post"]["responses"]["201"]["links"]
    assert links["patients_evaluate_create"]["operationId"] == "patients_evaluate_create"


def test_every_link_names_an_operation_that_exists(schema):
    known = {
        op["operationId"] for methods in schema["paths"].values() for m, op in methods.items() if m != "parameters"
    }
    for methods in schema["paths"].values():
        for method, operation in methods.items():
            for response in operation.get("responses", {}).values() if method != "parameters" else ():
                for link in response.get("links", {}).values():
                    assert link["operationId"] in known


def test_refusals_before_any_view_are_documented(schema):
    create = schema["paths"]["/api/v1/patients/"]["post"]["responses"]
    assert {"413", "414", "415"} <= set(create)
    assert create["413"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "414" in schema["paths"]["/api/v1/patients/"]["get"]["responses"]
    assert "413" not in schema["paths"]["/api/v1/patients/"]["get"]["responses"]
