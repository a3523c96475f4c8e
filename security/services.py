"""Writes on users: registration with a role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction

from security.roles import ADMIN, CLINICIAN


@transaction.atomic
def register_user(*, username: str, password: str, email: str = "", role: str) -> AbstractUser:
    """Create a user in one role group; clinicians and admins are staff, so they can use the admin site."""
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    user.is_staff = role in (CLINICIAN, ADMIN)
    user.save(update_fields=["is_staff"])
    user.groups.add(Group.objects.get(name=role))
    return user
