"""Writes on users and their tokens: registration with a role, and the clean-up of expired refresh tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.management import call_command
from django.db import transaction
from django.db.models import QuerySet
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken


@transaction.atomic
def register_user(*, username: str, password: str, email: str = "", role: str) -> AbstractUser:
    """Create a user in one role group; every role is staff, so the admin site shows it what its role may do."""
    user = get_user_model().objects.create_user(username=username, password=password, email=email)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.groups.add(Group.objects.get(name=role))
    return user


def flush_expired_tokens() -> None:
    """Delete expired outstanding refresh tokens and their blacklist entries (simplejwt's flushexpiredtokens).

    Only tokens past `exp` go: a revoked token that has not expired stays blacklisted.
    """
    call_command("flushexpiredtokens")


@transaction.atomic
def revoke_refresh_tokens(*, outstanding: QuerySet[OutstandingToken]) -> int:
    """Blacklist refresh tokens, as their holders' logout would; returns how many were not revoked already."""
    live = outstanding.filter(blacklistedtoken__isnull=True)
    revoked = BlacklistedToken.objects.bulk_create([BlacklistedToken(token=token) for token in live])
    return len(revoked)
