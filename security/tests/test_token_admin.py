"""The refresh tokens in the admin: support sees who holds a session and can end it, but never sees a token."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from conftest import make_user
from security.roles import VIEWER

pytestmark = pytest.mark.django_db

REFRESH_URL = "/api/v1/security/refresh/"


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="Str0ng-pass!word"))
    return client


def url(view: str, *args) -> str:
    return reverse(f"admin:token_blacklist_outstandingtoken_{view}", args=args)


def test_token_pages_never_show_the_token_itself(superuser_client):
    token = RefreshToken.for_user(make_user("ward-viewer", VIEWER))
    outstanding = OutstandingToken.objects.get(jti=token["jti"])
    listing = superuser_client.get(url("changelist"), {"q": "ward-viewer"})
    page = superuser_client.get(url("change", outstanding.pk))
    assert listing.status_code == page.status_code == 200
    assert token["jti"] in listing.content.decode() and "ward-viewer" in page.content.decode()
    assert str(token) not in listing.content.decode() + page.content.decode()
    assert b'name="_save"' not in page.content
    assert superuser_client.get(url("add")).status_code == 403


def test_revoke_action_logs_the_selected_sessions_out(superuser_client):
    user = make_user("ward-viewer", VIEWER)
    revoked, already_revoked, kept = (RefreshToken.for_user(user) for _ in range(3))
    BlacklistedToken.objects.create(token=OutstandingToken.objects.get(jti=already_revoked["jti"]))
    selected = OutstandingToken.objects.filter(jti__in=[revoked["jti"], already_revoked["jti"]])

    response = superuser_client.post(
        url("changelist"),
        {"action": "revoke", "_selected_action": [str(pk) for pk in selected.values_list("pk", flat=True)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 refresh token(s) revoked." in [str(message) for message in response.context["messages"]]
    assert APIClient().post(REFRESH_URL, {"refresh": str(revoked)}, format="json").status_code == 401
    assert APIClient().post(REFRESH_URL, {"refresh": str(kept)}, format="json").status_code == 200
