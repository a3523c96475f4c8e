"""Getting and refreshing JWTs, using them, and the session login of the browsable API."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from conftest import make_user
from security.roles import VIEWER

TOKEN_URL = "/api/v1/security/token/"
REFRESH_URL = "/api/v1/security/refresh/"
PATIENTS_URL = "/api/v1/patients/"
PASSWORD = "Str0ng-pass!word"  # what conftest.make_user gives every user

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    return make_user("ward-viewer", VIEWER)


def post_form(client: APIClient, url: str, fields: dict):
    return client.post(url, data=urlencode(fields), content_type="application/x-www-form-urlencoded")


def assert_token_pair(response):
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["access"] and body["refresh"]


def test_token_from_json_credentials(anon_client, viewer):
    assert_token_pair(anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json"))


def test_token_from_form_fields(anon_client, viewer):
    assert_token_pair(post_form(anon_client, TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}))


def test_token_from_oauth2_password_grant_form(anon_client, viewer):
    fields = {"grant_type": "password", "username": "ward-viewer", "password": PASSWORD, "scope": ""}
    assert_token_pair(post_form(anon_client, TOKEN_URL, fields))


def test_token_with_wrong_password_is_401(anon_client, viewer):
    response = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": "not-the-password"}, format="json")
    assert response.status_code == 401
    assert "access" not in response.json()


def test_token_for_unknown_user_is_401(anon_client, db):
    response = anon_client.post(TOKEN_URL, {"username": "ghost", "password": PASSWORD}, format="json")
    assert response.status_code == 401


def test_token_for_inactive_user_is_401(anon_client):
    make_user("left-the-hospital", VIEWER, is_active=False)
    response = anon_client.post(TOKEN_URL, {"username": "left-the-hospital", "password": PASSWORD}, format="json")
    assert response.status_code == 401


def test_token_without_fields_is_400_naming_them(anon_client, db):
    response = anon_client.post(TOKEN_URL, {}, format="json")
    assert response.status_code == 400
    assert {"username", "password"} <= set(response.json())


def test_token_without_password_is_400_naming_password(anon_client, viewer):
    response = post_form(anon_client, TOKEN_URL, {"username": "ward-viewer"})
    assert response.status_code == 400
    assert set(response.json()) == {"password"}


def test_access_token_authenticates_as_bearer(anon_client, viewer):
    access = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json").json()[
        "access"
    ]
    assert anon_client.get(PATIENTS_URL).status_code == 401
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert anon_client.get(PATIENTS_URL).status_code == 200


def test_access_token_with_other_scheme_is_401(anon_client, viewer):
    access = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json").json()[
        "access"
    ]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {access}")
    assert anon_client.get(PATIENTS_URL).status_code == 401


def test_refresh_gives_a_new_working_access_token(anon_client, viewer):
    pair = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json").json()
    response = anon_client.post(REFRESH_URL, {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 200, response.content
    access = response.json()["access"]
    assert access
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert client.get(PATIENTS_URL).status_code == 200


def test_refresh_with_garbage_token_is_401(anon_client, db):
    response = anon_client.post(REFRESH_URL, {"refresh": "not.a.token"}, format="json")
    assert response.status_code == 401


def test_refresh_with_an_access_token_is_401(anon_client, viewer):
    pair = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json").json()
    response = anon_client.post(REFRESH_URL, {"refresh": pair["access"]}, format="json")
    assert response.status_code == 401


def test_refresh_without_token_is_400_naming_refresh(anon_client, db):
    response = anon_client.post(REFRESH_URL, {}, format="json")
    assert response.status_code == 400
    assert "refresh" in response.json()


def test_refresh_token_is_not_accepted_as_access_token(anon_client, viewer):
    pair = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json").json()
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['refresh']}")
    assert anon_client.get(PATIENTS_URL).status_code == 401


def test_session_login_opens_the_browsable_api(viewer):
    client = Client()
    assert client.get(PATIENTS_URL, HTTP_ACCEPT="text/html").status_code in (401, 403)
    assert client.login(username="ward-viewer", password=PASSWORD)
    response = client.get(PATIENTS_URL, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


def test_browsable_api_login_form_logs_in(viewer):
    client = Client()
    login_page = client.get("/api-auth/login/")
    assert login_page.status_code == 200
    response = client.post(
        "/api-auth/login/", {"username": "ward-viewer", "password": PASSWORD, "next": PATIENTS_URL}, follow=True
    )
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == PATIENTS_URL
    assert client.get(PATIENTS_URL, HTTP_ACCEPT="text/html").status_code == 200


def test_force_login_session_reads_json_too(viewer):
    client = Client()
    client.force_login(viewer)
    response = client.get(PATIENTS_URL, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_token_responses_may_not_be_stored_by_browsers_or_proxies(anon_client, django_user_model):
    django_user_model.objects.create_user("nostore", password="Str0ng-pass!word")
    response = anon_client.post(
        "/api/v1/security/token/", {"username": "nostore", "password": "Str0ng-pass!word"}, format="json"
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    refreshed = anon_client.post("/api/v1/security/refresh/", {"refresh": response.json()["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert refreshed["Cache-Control"] == "no-store"


def test_a_grant_other_than_password_is_400_naming_grant_type(anon_client, django_user_model):
    django_user_model.objects.create_user("oauth2", password="Str0ng-pass!word")
    response = anon_client.post(
        "/api/v1/security/token/",
        {"grant_type": "client_credentials", "username": "oauth2", "password": "Str0ng-pass!word"},
        format="multipart",
    )
    assert response.status_code == 400
    assert "grant_type" in response.json()
