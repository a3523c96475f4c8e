"""Hostile input on the FHIR and CDS Hooks paths: always the client's error format, never a 500 or an HTML page.

Found by fuzzing: an error message quoting a character FHIR strings do not admit (a no-break space, a line
separator) could not be built as an OperationOutcome, and refusals made before any view were HTML pages.
"""

from __future__ import annotations

import pytest

from interop.tests.helpers import FHIR_JSON, parse_fhir

pytestmark = pytest.mark.django_db

ODD_VALUES = ["\u00a0", "x\u2028y", "\u3000", "a\u200bb", "\U0001f600", "\ufeff"]


@pytest.mark.parametrize("search", ["Observation?patient=108&code", "Procedure?patient", "ServiceRequest?status"])
@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_characters_in_a_fhir_search_are_a_4xx_operation_outcome(viewer_client, search, value):
    response = viewer_client.get(f"/fhir/{search}={value}")
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["resourceType"] == "OperationOutcome"
    parse_fhir(response.json())  # a valid R4B resource


@pytest.mark.parametrize("value", ["%00", "%1E", "%C2%85"])
def test_a_control_character_in_a_fhir_query_is_a_400_operation_outcome_naming_the_parameter(viewer_client, value):
    response = viewer_client.get(f"/fhir/Observation?patient=108&code={value}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith(FHIR_JSON)
    outcome = parse_fhir(response.json())
    [issue] = outcome.issue
    assert issue.code == "invalid"
    assert "'code'" in issue.diagnostics and "Control characters are not allowed" in issue.diagnostics


def test_a_control_character_in_a_fhir_path_is_a_404_operation_outcome(viewer_client):
    response = viewer_client.get("/fhir/Patient/a%00b")
    assert response.status_code == 404
    assert parse_fhir(response.json()).issue[0].code == "not-found"


def test_a_control_character_in_a_cds_path_or_query_is_json(viewer_client):
    assert viewer_client.get("/cds-services/x%00").json()["detail"]
    response = viewer_client.get("/cds-services?x=%01")
    assert response.status_code == 400
    assert "Control characters are not allowed" in response.json()["detail"]
