"""Celery tasks of security: thin, each calls a service."""

from __future__ import annotations

from celery import shared_task

from security import services


@shared_task(name="security.flush_expired_tokens")
def flush_expired_tokens_task() -> None:
    """Run by beat (JWT_FLUSH_EXPIRED_TOKENS_HOURS): keep the outstanding-token table to live tokens."""
    services.flush_expired_tokens()
