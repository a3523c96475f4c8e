"""Refresh tokens work once: a refresh rotates them, a used or logged-out one is refused, expired ones are flushed."""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from clinrec.celery import app as celery_app
from conftest import make_user
from security.roles import VIEWER
from security.tasks import flush_expired_tokens_task

TOKEN_URL = "/api/v1/security/token/"
REFRESH_URL = "/api/v1/security/refresh/"
LOGOUT_URL = "/api/v1/security/logout/"
PATIENTS_URL = "/api/v1/patients/"
PASSWORD = "Str0ng-pass!word"  # what conftest.make_user gives every user

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer():
    return make_user("ward-viewer", VIEWER)


@pytest.fixture
def pair(anon_client, viewer) -> dict[str, str]:
    response = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh(refresh_token: str):
    return APIClient().post(REFRESH_URL, {"refresh": refresh_token}, format="json")


def logout(refresh_token: str):
    return APIClient().post(LOGOUT_URL, {"refresh": refresh_token}, format="json")


def reads_patients(access: str) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get(PATIENTS_URL).status_code == 200


def assert_refused(response, problem: str):
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert problem in body["detail"], body
    assert "access" not in body and "refresh" not in body


def expired_refresh_token(user) -> RefreshToken:
    """A refresh token issued long enough ago to have expired (its `exp` claim and its outstanding row agree)."""
    issued = timezone.now() - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"] - timedelta(hours=1)
    with mock.patch("rest_framework_simplejwt.tokens.aware_utcnow", return_value=issued):
        return RefreshToken.for_user(user)


# --- Rotation -------------------------------------------------------------------------------------------------


def test_refresh_returns_a_new_access_and_a_new_refresh_token(pair):
    response = refresh(pair["refresh"])
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["refresh"] != pair["refresh"]
    assert reads_patients(body["access"])


def test_a_used_refresh_token_is_refused_as_blacklisted(pair):
    assert refresh(pair["refresh"]).status_code == 200
    assert_refused(refresh(pair["refresh"]), "blacklisted")


def test_the_rotated_refresh_token_works_once_in_its_turn(pair):
    second = refresh(pair["refresh"]).json()["refresh"]
    third = refresh(second)
    assert third.status_code == 200, third.content
    assert_refused(refresh(second), "blacklisted")
    assert refresh(third.json()["refresh"]).status_code == 200


def test_reusing_an_old_refresh_token_does_not_touch_the_new_one(pair):
    # A replay by someone holding a copy is refused; the rightful client's rotated token still works.
    current = refresh(pair["refresh"]).json()["refresh"]
    assert_refused(refresh(pair["refresh"]), "blacklisted")
    assert refresh(current).status_code == 200


def test_a_refresh_token_issued_before_the_blacklist_existed_rotates_once(viewer):
    # Tokens handed out before the blacklist app was installed have no outstanding row: still honoured once.
    token = RefreshToken.for_user(viewer)
    OutstandingToken.objects.filter(jti=token["jti"]).delete()
    assert refresh(str(token)).status_code == 200
    assert_refused(refresh(str(token)), "blacklisted")


def test_refresh_for_a_deleted_user_is_401_not_500(pair, viewer):
    viewer.delete()
    assert_refused(refresh(pair["refresh"]), "no longer exists")


def test_refresh_for_a_deactivated_user_is_401(pair, viewer):
    viewer.is_active = False
    viewer.save(update_fields=["is_active"])
    assert_refused(refresh(pair["refresh"]), "No active account")


def test_an_expired_refresh_token_is_refused(viewer):
    assert_refused(refresh(str(expired_refresh_token(viewer))), "expired")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_simultaneous_refreshes_with_one_token_get_one_new_pair(viewer):
    """Racing the same refresh token: one request wins, the other is refused like any reuse."""
    if connection.vendor != "postgresql":
        pytest.skip("needs row locks between concurrent connections (PostgreSQL; SQLite serialises writers)")
    token = str(RefreshToken.for_user(viewer))
    rounds, statuses = 5, []
    for _ in range(rounds):
        barrier, results = threading.Barrier(2), []

        def race(token=token, barrier=barrier, results=results):
            try:
                client = Client()
                barrier.wait(timeout=10)
                results.append(client.post(REFRESH_URL, {"refresh": token}, content_type="application/json"))
            finally:
                connections.close_all()

        threads = [threading.Thread(target=race) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        statuses.append(sorted(response.status_code for response in results))
        winners = [response for response in results if response.status_code == 200]
        token = winners[0].json()["refresh"] if winners else token
    assert statuses == [[200, 401]] * rounds


# --- Logout --------------------------------------------------------------------------------------------------


def test_logout_revokes_the_refresh_token(pair):
    response = logout(pair["refresh"])
    assert response.status_code == 204, response.content
    assert_refused(refresh(pair["refresh"]), "blacklisted")


def test_logout_needs_no_access_token_and_leaves_other_sessions_alone(anon_client, viewer, pair):
    other = anon_client.post(TOKEN_URL, {"username": "ward-viewer", "password": PASSWORD}, format="json").json()
    assert logout(pair["refresh"]).status_code == 204
    assert refresh(other["refresh"]).status_code == 200


def test_logout_of_a_rotated_token_chain_revokes_the_current_token(pair):
    current = refresh(pair["refresh"]).json()["refresh"]
    assert logout(current).status_code == 204
    assert_refused(refresh(current), "blacklisted")


def test_logout_twice_is_401_already_blacklisted(pair):
    assert logout(pair["refresh"]).status_code == 204
    assert_refused(logout(pair["refresh"]), "blacklisted")


@pytest.mark.parametrize("garbage", ["not.a.token", "", "x" * 5000, "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"])
def test_logout_with_an_invalid_token_is_a_json_error(db, garbage):
    response = logout(garbage)
    assert response.status_code in (400, 401), response.content
    body = response.json()
    assert ("refresh" in body) if response.status_code == 400 else ("invalid" in body["detail"].lower())


def test_logout_without_refresh_is_400_naming_refresh(db):
    response = APIClient().post(LOGOUT_URL, {}, format="json")
    assert response.status_code == 400
    assert "refresh" in response.json()


def test_logout_with_an_access_token_is_401_wrong_type(pair):
    assert_refused(logout(pair["access"]), "wrong type")
    assert refresh(pair["refresh"]).status_code == 200


def test_logout_of_a_deleted_users_token_still_revokes_it(pair, viewer):
    viewer.delete()
    assert logout(pair["refresh"]).status_code == 204
    assert BlacklistedToken.objects.filter(token__jti=RefreshToken(pair["refresh"], verify=False)["jti"]).exists()


def test_logout_and_refresh_are_not_stored_by_browsers_or_proxies(pair):
    assert refresh(pair["refresh"])["Cache-Control"] == "no-store"


# --- Flushing expired tokens ---------------------------------------------------------------------------------


def test_flushexpiredtokens_deletes_expired_tokens_and_keeps_live_revocations(viewer):
    expired = expired_refresh_token(viewer)
    live = RefreshToken.for_user(viewer)
    revoked = RefreshToken.for_user(viewer)
    assert logout(str(revoked)).status_code == 204

    call_command("flushexpiredtokens")

    assert not OutstandingToken.objects.filter(jti=expired["jti"]).exists()
    assert set(OutstandingToken.objects.values_list("jti", flat=True)) == {live["jti"], revoked["jti"]}
    # A revoked token that has not expired yet stays refused; the expired one is refused by its `exp`.
    assert_refused(refresh(str(revoked)), "blacklisted")
    assert_refused(refresh(str(expired)), "expired")
    assert refresh(str(live)).status_code == 200


def test_beat_flushes_expired_tokens_with_the_celery_task(viewer):
    entry = celery_app.conf.beat_schedule["flush-expired-tokens"]
    assert entry["task"] == flush_expired_tokens_task.name
    assert entry["schedule"] == settings.JWT_FLUSH_EXPIRED_TOKENS_HOURS * 3600
    expired = expired_refresh_token(viewer)
    flush_expired_tokens_task.delay()
    assert not OutstandingToken.objects.filter(jti=expired["jti"]).exists()
