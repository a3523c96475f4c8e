"""Fixtures of the recommendations tests: an admin-site session in the admin role."""

from __future__ import annotations

import pytest

from conftest import make_user
from security.roles import ADMIN


@pytest.fixture
def admin_user_session(db, client):
    """`client` logged in to the admin site as a staff member in the admin role (not a superuser)."""
    user = make_user("lead", ADMIN, is_staff=True)
    client.force_login(user)
    return user
