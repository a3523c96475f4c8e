"""Users and roles in the admin: each user's role as a column and a filter; the role groups read-only, with a
line saying the code defines them; "View site" leads to the API's documentation."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from conftest import make_user
from security.roles import ADMIN, CLINICIAN, VIEWER

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="Str0ng-pass!word"))
    return client


def test_the_user_list_shows_each_role_and_filters_by_it(root):
    make_user("nurse", CLINICIAN, is_staff=True)
    make_user("student", VIEWER, is_staff=True)

    page = root.get("/admin/auth/user/").content.decode()
    filtered = root.get("/admin/auth/user/", {"role": CLINICIAN})

    assert "column-role" in page
    assert [user.username for user in filtered.context["cl"].result_list] == ["nurse"]


def test_the_role_groups_are_read_only_and_say_the_code_defines_them(root):
    group = Group.objects.get(name=ADMIN)
    listing = root.get("/admin/auth/group/").content.decode()
    page = root.get(f"/admin/auth/group/{group.pk}/change/").content.decode()

    assert "security/roles.py" in listing and "security/roles.py" in page
    assert 'name="_save"' not in page
    assert root.get("/admin/auth/group/add/").status_code == 403
    assert root.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Group.objects.filter(name=ADMIN).exists()


def test_view_site_leads_to_the_api_documentation(root):
    page = root.get("/admin/").content.decode()
    assert '<a href="/api/docs/">View site</a>' in page
