"""A procedure history holds what was performed: not in the future, not before 1900; null text is absent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from patients.tests.factories import PatientFactory
from procedures.models import PatientProcedure
from procedures.tests.factories import ProcedureFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/patient-procedures/"


@pytest.fixture
def link_body():
    return {"patient": PatientFactory().pk, "procedure": ProcedureFactory().pk}


@pytest.mark.parametrize("performed_at", [lambda: timezone.now() + timedelta(days=2), lambda: "1850-01-01T00:00:00Z"])
def test_implausible_performed_at_is_400_naming_the_field(clinician_client, link_body, performed_at):
    value = performed_at()
    body = {**link_body, "performed_at": value if isinstance(value, str) else value.isoformat()}
    response = clinician_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert "performed_at" in response.json()
    assert not PatientProcedure.objects.exists()


def test_a_few_minutes_of_clock_skew_are_tolerated(clinician_client, link_body):
    body = {**link_body, "performed_at": (timezone.now() + timedelta(minutes=1)).isoformat()}
    assert clinician_client.post(URL, body, format="json").status_code == 201


def test_null_report_and_null_code_mean_empty(clinician_client, admin_client_jwt, link_body):
    body = {**link_body, "performed_at": timezone.now().isoformat(), "report": None}
    response = clinician_client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["report"] == ""
    response = admin_client_jwt.post(
        "/api/v1/procedures/",
        {"id": "x-1", "name": "X", "department": "radiology", "code": None, "description": None},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["code"], response.json()["description"]) == ("", "")
