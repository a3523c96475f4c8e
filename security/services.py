"""Writes on users: registration with a role."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction


@transaction.atomic
def register_user(*, username: str, password: str, email: str = "", role: str) -> AbstractUser:
    """Create a user in one role group; every role is staff, so the admin site shows it what its role may do."""
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(Group.objects.get(name=role))
    return user
