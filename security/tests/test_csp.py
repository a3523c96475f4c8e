"""The Content-Security-Policy header on every HTML page, and pages written so that a strict policy lets them work.

No browser here (security/tests/test_csp_browser.py drives one): these read the header and the HTML served.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from conftest import make_user
from security.roles import VIEWER

pytestmark = pytest.mark.django_db

HTML_PAGES = [
    "/admin/login/",
    "/admin/",
    "/admin/patients/patient/",
    "/api/docs/",
    "/api/redoc/",
    "/api/v1/",
    "/api/v1/patients/",
    "/api-auth/login/",
]


class Tags(HTMLParser):
    """The <script> and <style> elements of a page: their attributes and whether they have inline content."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[dict] = []
        self.event_handlers: list[str] = []  # onclick="..." and the like: inline code too
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        self.event_handlers += [f"<{tag} {name}={value!r}>" for name, value in attrs if name.startswith("on")]
        if tag in ("script", "style"):
            self._open = {"tag": tag, **dict(attrs), "text": ""}
            self.elements.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag):
        self._open = None


def parse(content: bytes) -> Tags:
    parser = Tags()
    parser.feed(content.decode())
    return parser


def tags(content: bytes) -> list[dict]:
    return parse(content).elements


def directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(make_user("ward-viewer", VIEWER, is_staff=True))
    return client


def get_page(staff_client: Client, path: str):
    """The page as its user sees it: login pages signed out (signed in they redirect), the others signed in."""
    client = Client() if path.endswith("/login/") else staff_client
    response = client.get(path, HTTP_ACCEPT="text/html")
    assert response.status_code == 200, path
    return response


@pytest.mark.parametrize("path", HTML_PAGES)
def test_every_html_page_carries_a_strict_policy(staff_client, path):
    response = get_page(staff_client, path)
    assert response["Content-Type"].startswith("text/html")
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    # No remote host and nothing unsafe anywhere, except style="..." attributes (which run no code).
    everything = " ".join(value for name, values in policy.items() if name != "style-src-attr" for value in values)
    assert "http" not in everything and "*" not in everything and "unsafe" not in everything, everything


@pytest.mark.parametrize("path", HTML_PAGES)
def test_no_page_runs_inline_code_or_styles_without_the_nonce(staff_client, path):
    response = get_page(staff_client, path)
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    for element in tags(response.content):
        if element["tag"] == "script" and element.get("type") != "application/json":  # JSON data is not run
            assert element.get("src") and not element["text"].strip(), (path, element)
        if element["tag"] == "style":
            assert nonce and element.get("nonce") == nonce.group(1), (path, element)
    assert not parse(response.content).event_handlers, path
    assert "fonts.googleapis.com" not in response.content.decode()


def test_a_json_response_carries_the_policy_too(staff_client):
    response = staff_client.get("/api/v1/patients/", HTTP_ACCEPT="application/json")
    assert response["Content-Type"] == "application/json"
    assert directives(response)["default-src"] == ["'self'"]


def test_pages_that_need_no_nonce_get_none(staff_client):
    # A nonce the page does not use would only be a value to leak; django-csp adds it when a template asks.
    assert "nonce-" not in staff_client.get("/admin/")["Content-Security-Policy"]


def test_swagger_ui_is_started_by_a_script_file_of_the_same_view(staff_client):
    page = staff_client.get("/api/docs/")
    sources = [element["src"] for element in tags(page.content) if element["tag"] == "script"]
    assert sources[-1] == "/api/docs/?script="
    script = staff_client.get(sources[-1])
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()
    # No validator badge: it would fetch an image from validator.swagger.io with the schema's address.
    assert re.search(r'"validatorUrl":\s*null', script.content.decode())


def test_redoc_gets_its_nonce_and_a_blob_worker_on_its_page_only(staff_client):
    page = staff_client.get("/api/redoc/")
    policy = directives(page)
    nonce = re.search(r"'nonce-([^']+)'", " ".join(policy["style-src"])).group(1)
    starter = [element for element in tags(page.content) if element.get("src", "").endswith("redoc-init.js")]
    assert starter and starter[0]["nonce"] == nonce
    assert policy["worker-src"] == ["'self'", "blob:"]
    assert "worker-src" not in directives(staff_client.get("/api/docs/"))
    # Each response its own nonce.
    assert nonce not in staff_client.get("/api/redoc/")["Content-Security-Policy"]


def test_the_browsable_api_serves_no_inline_stylesheet(staff_client):
    # DRF adds a Pygments <style> when Pygments is installed (as in development); the policy would refuse it.
    response = staff_client.get("/api/v1/patients/", HTTP_ACCEPT="text/html")
    assert not [element for element in tags(response.content) if element["tag"] == "style"]
    assert b"Patient List" in response.content
