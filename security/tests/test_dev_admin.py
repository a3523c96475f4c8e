"""`manage.py ensure_dev_admin`: the development administrator of `make run`, only with DEBUG, created once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from security.roles import ADMIN

pytestmark = pytest.mark.django_db

User = get_user_model()


def run_command() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ensure_dev_admin", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True
    settings.DEV_ADMIN_USERNAME = "devadmin"
    settings.DEV_ADMIN_PASSWORD = "devpass"
    return settings


def test_creates_a_superuser_in_the_admin_role_with_a_warning(debug_on):
    _, err = run_command()
    user = User.objects.get(username="devadmin")
    assert user.is_superuser and user.is_staff
    assert user.check_password("devpass")
    assert set(user.groups.values_list("name", flat=True)) == {ADMIN}
    assert "WARNING" in err and "devadmin" in err and "never with DEBUG off" in err


def test_dev_admin_can_get_a_token_and_log_into_the_admin(debug_on, anon_client, client):
    run_command()
    token = anon_client.post("/api/v1/security/token/", {"username": "devadmin", "password": "devpass"}, format="json")
    assert token.status_code == 200
    assert client.login(username="devadmin", password="devpass")
    assert client.get("/admin/").status_code == 200


def test_running_twice_keeps_one_user_and_its_password(debug_on):
    run_command()
    user = User.objects.get(username="devadmin")
    user.set_password("changed-by-the-developer")
    user.save()
    out, err = run_command()
    assert "already exists" in out
    assert err == ""
    assert User.objects.filter(username="devadmin").count() == 1
    user.refresh_from_db()
    assert user.check_password("changed-by-the-developer")


def test_creates_nothing_when_debug_is_off(settings):
    settings.DEBUG = False
    settings.DEV_ADMIN_USERNAME = "devadmin"
    out, _ = run_command()
    assert "DEBUG is off" in out
    assert not User.objects.filter(username="devadmin").exists()
