"""Login lockout: N failures for a username from an address lock it out (429), on the API and the admin."""

from __future__ import annotations

import logging

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from conftest import make_user
from security.roles import ADMIN, VIEWER

pytestmark = pytest.mark.django_db

PASSWORD = "Str0ng-pass!word"
TOKEN_URL = "/api/v1/security/token/"
LIMIT = 3


def token(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(TOKEN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
def test_api_locks_a_username_after_n_failures_even_with_the_right_password(caplog):
    make_user("nurse", VIEWER)
    client = APIClient()
    caplog.set_level(logging.INFO, logger="clinrec.security")

    answers = [token(client, "nurse", "wrong").status_code for _ in range(LIMIT)]
    locked = token(client, "nurse", PASSWORD)

    assert answers[: LIMIT - 1] == [401] * (LIMIT - 1)
    assert answers[-1] == 429  # the Nth failure already answers with the lockout
    assert locked.status_code == 429
    assert "too many login attempts" in locked.json()["detail"]
    assert int(locked["Retry-After"]) > 0
    # Another address, or another username from this address, is not locked.
    assert token(client, "nurse", PASSWORD, address="10.0.0.2").status_code == 200
    messages = [record.getMessage() for record in caplog.records if record.name == "clinrec.security"]
    assert any(message.startswith("login failed user=nurse") for message in messages)
    assert any(message.startswith("login locked out user=nurse") for message in messages)
    assert any(message.startswith("login succeeded user=nurse") for message in messages)


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
def test_a_success_before_the_limit_resets_the_count():
    make_user("nurse", VIEWER)
    client = APIClient()
    for _ in range(LIMIT - 1):
        assert token(client, "nurse", "wrong").status_code == 401
    assert token(client, "nurse", PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        assert token(client, "nurse", "wrong").status_code == 401
    assert token(client, "nurse", PASSWORD).status_code == 200


@override_settings(AXES_FAILURE_LIMIT=LIMIT, AXES_IP_FAILURE_LIMIT=5)
def test_password_spraying_from_one_address_hits_the_higher_per_address_limit():
    make_user("victim", VIEWER)
    client = APIClient()
    # Five usernames, one failure each: no username reaches its own limit, the address reaches its.
    for number in range(5):
        token(client, f"user{number}", "Summer2026!")

    assert token(client, "victim", PASSWORD).status_code == 429
    assert token(client, "victim", PASSWORD, address="10.0.0.9").status_code == 200


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
def test_one_mistyping_user_does_not_lock_out_colleagues_behind_the_same_address():
    make_user("nurse", VIEWER)
    make_user("doctor", VIEWER)
    client = APIClient()
    for _ in range(LIMIT):
        token(client, "nurse", "wrong")
    assert token(client, "doctor", PASSWORD).status_code == 200


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
def test_admin_login_shows_the_lockout_page_after_n_failures_and_resets_on_success(client):
    make_user("lead", ADMIN, is_staff=True)

    def login(password: str):
        return client.post(
            "/admin/login/?next=/admin/", {"username": "lead", "password": password}, REMOTE_ADDR="10.0.0.5"
        )

    assert login("wrong").status_code == 200  # the form again, with its error
    assert login(PASSWORD).status_code == 302  # a success before the limit resets the count
    client.logout()
    for _ in range(LIMIT):
        login("wrong")
    locked = login(PASSWORD)

    assert locked.status_code == 429
    assert locked["Content-Type"].startswith("text/html")
    assert b"Too many failed logins" in locked.content


@override_settings(AXES_FAILURE_LIMIT=LIMIT)
def test_browsable_api_login_is_limited_too(client):
    make_user("nurse", VIEWER)
    for _ in range(LIMIT):
        client.post("/api-auth/login/", {"username": "nurse", "password": "wrong"}, REMOTE_ADDR="10.0.0.6")
    locked = client.post("/api-auth/login/", {"username": "nurse", "password": PASSWORD}, REMOTE_ADDR="10.0.0.6")
    assert locked.status_code == 429


def test_token_refresh_is_logged_as_a_security_event(caplog):
    user = make_user("nurse", VIEWER)
    client = APIClient()
    pair = token(client, "nurse", PASSWORD).json()
    caplog.set_level(logging.INFO, logger="clinrec.security")

    assert client.post("/api/v1/security/refresh/", {"refresh": pair["refresh"]}).status_code == 200
    assert any(
        record.getMessage().startswith(f"token refreshed user_id={user.pk}")
        for record in caplog.records
        if record.name == "clinrec.security"
    )


def test_a_username_no_account_can_have_is_a_400_and_no_login_attempt():
    # The lockout's records hold 255 characters: a longer username used to end in a 500 on PostgreSQL.
    from axes.models import AccessAttempt

    response = token(APIClient(), "u" * 400, "whatever")

    assert response.status_code == 400
    assert response.json() == {"username": ["Ensure this field has no more than 150 characters."]}
    assert not AccessAttempt.objects.exists()
