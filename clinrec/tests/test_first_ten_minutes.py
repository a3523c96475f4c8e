"""What trips a newcomer up in the first ten minutes: each answer says what went wrong and what to do instead.

A `Token` header is told the scheme is `Bearer`; an impossible date is called impossible, not "wrong format";
Make targets explain a missing Docker Compose and a busy port; `make help` piped has no colour codes; the
README's examples run on macOS too. And the browsable API reads well: rendered descriptions, a patient's
links, an evaluate page that invites the POST.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from conftest import client_for, make_user
from patients.tests.factories import PatientFactory
from security.roles import CLINICIAN

BASE_DIR = Path(__file__).resolve().parents[2]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def run_make(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(BASE_DIR), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- The API's answers -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["Token", "JWT", "Basic"])
def test_another_authorization_scheme_is_told_to_send_bearer(scheme):
    response = APIClient().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"{scheme} abc.def")
    assert response.status_code == 401
    assert f"'{scheme}' is not accepted" in response.json()["detail"]
    assert "Authorization: Bearer <access token>" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_no_authorization_header_still_says_credentials_were_not_provided():
    response = APIClient().get("/api/v1/patients/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


@pytest.mark.django_db
def test_an_impossible_birth_date_is_reported_as_such_and_nothing_is_written():
    client = client_for(make_user("nurse", CLINICIAN))
    response = client.post("/api/v1/patients/", {"id": "p-1", "name": "Ann", "birth_date": "1950-02-30"}, format="json")
    assert response.status_code == 400
    assert response.json()["birth_date"] == [
        "1950-02-30 is not a date of the calendar (day is out of range for month)."
    ]
    wrong_format = client.post(
        "/api/v1/patients/", {"id": "p-1", "name": "Ann", "birth_date": "30.02.1950"}, format="json"
    )
    assert "wrong format" in wrong_format.json()["birth_date"][0]
    assert client.get("/api/v1/patients/p-1/").status_code == 404


@pytest.mark.django_db
def test_an_impossible_procedure_date_time_is_reported_as_such():
    client = client_for(make_user("nurse", CLINICIAN))
    response = client.post(
        "/api/v1/patient-procedures/",
        {"patient": "x", "procedure": "y", "performed_at": "2026-02-30T10:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert "2026-02-30 is not a date of the calendar" in response.json()["performed_at"][0]


# --- The browsable API -----------------------------------------------------------------------------------


@pytest.fixture
def browser_session(db) -> APIClient:
    client = APIClient()
    client.force_login(make_user("nurse", CLINICIAN))
    return client


def test_a_patient_in_the_browsable_api_links_to_its_procedures_recommendations_and_evaluate(browser_session):
    PatientFactory(id="108")
    page = browser_session.get("/api/v1/patients/108/", HTTP_ACCEPT="text/html").content.decode()
    links = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', page[page.index('id="related-links"') :])
    assert links[:3] == [
        ("http://testserver/api/v1/patient-procedures/?patient=108", "Procedures"),
        ("http://testserver/api/v1/patient-recommendations/?patient=108", "Recommendations"),
        ("http://testserver/api/v1/patients/108/evaluate/", "Evaluate"),
    ]


def test_descriptions_are_rendered_not_raw_markdown(browser_session):
    page = browser_session.get("/api/v1/patients/", HTTP_ACCEPT="text/html").content.decode()
    assert "<code>?search=</code>" in page and "`?search=`" not in page


def test_the_evaluate_page_invites_the_post_in_a_browser_and_stays_405_for_json(browser_session):
    PatientFactory(id="108")
    page = browser_session.get("/api/v1/patients/108/evaluate/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    content = page.content.decode()
    assert "405" not in content and "POST to this URL evaluates the patient" in content
    assert 'data-method="POST"' in content or 'method="POST"' in content  # the form with its POST button

    as_json = browser_session.get("/api/v1/patients/108/evaluate/", HTTP_ACCEPT="application/json")
    assert as_json.status_code == 405
    assert as_json["Allow"].startswith("POST")


@pytest.mark.django_db
def test_the_favicon_is_served_by_the_app(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200
    assert b"<svg" in b"".join(response.streaming_content)


# --- Make and the README ---------------------------------------------------------------------------------


@needs_make
def test_make_help_piped_has_no_colour_codes():
    result = run_make("help")
    assert result.returncode == 0 and "docker-up" in result.stdout
    assert "\x1b[" not in result.stdout


@needs_make
@pytest.mark.parametrize("target", ["docker-up", "logs", "docker-down"])
def test_docker_targets_without_compose_say_what_is_missing_and_how_to_get_it(target):
    result = run_make(target, COMPOSE="no-such-compose-command")
    assert result.returncode != 0
    assert "Docker Compose is not installed" in result.stdout
    assert "docker-compose-plugin" in result.stdout and f"make {target} COMPOSE=" in result.stdout
    assert "unknown shorthand flag" not in result.stdout + result.stderr


@needs_make
def test_make_run_on_a_busy_port_suggests_another():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_make("port-free", PORT=str(port))
    assert result.returncode != 0
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stdout and "PORT=" in result.stdout


def test_the_readme_examples_need_no_gnu_date():
    readme = (BASE_DIR / "README.md").read_text()
    assert "date -d" not in readme and "date -u -d" not in readme
