"""What every audited model's history shares: who, when, from where, and by which way in (django-simple-history).

A model is audited with `history = audited_history()`. Each historical record gets simple-history's own
columns (`history_user`, `history_date`, `history_type`) plus two of ours, filled from the request being served:
- `history_client_address`: the client address, found the way the login lockout finds it (REMOTE_ADDR, or
  X-Forwarded-For behind CLIENT_IP_PROXY_COUNT trusted proxies);
- `history_source`: `api`, `admin`, `fhir`, `cds` or `web` for a request, `system` for a write with no request
  at all (the worker, beat, a management command) — such a write has no user, and says so. An EHR calling
  CDS Hooks is authenticated but is not a user account: its writes have no user, `source: cds`.

The user is read when the record is written, from the Django request that HistoryRequestMiddleware keeps.
DRF authenticates (JWT included) before a view writes and sets that request's `user`, so API writes carry the
token's user.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import models
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

SYSTEM = "system"


class AuditedHistory(models.Model):
    """The extra columns of every historical record (see the module docstring)."""

    history_client_address = models.GenericIPAddressField(null=True, blank=True)
    history_source = models.CharField(max_length=6, default=SYSTEM)

    class Meta:
        abstract = True


def history_user(request=None, **kwargs):
    """The user behind a write: a user account only (an EHR calling CDS Hooks is a client, not a user)."""
    user = getattr(request, "user", None)
    return user if isinstance(user, get_user_model()) else None


def audited_history(**kwargs) -> HistoricalRecords:
    """The history of one model, with the client address and the way in of each change."""
    return HistoricalRecords(bases=[AuditedHistory], get_user=history_user, **kwargs)


def request_source(path: str) -> str:
    """The way in, from the path: `admin`, `api`, `fhir`, `cds` (CDS Hooks), or `web` (anything else)."""
    for prefix, source in (("/admin/", "admin"), ("/api", "api"), ("/fhir", "fhir"), ("/cds-services", "cds")):
        if path.startswith(prefix):
            return source
    return "web"


def client_address(request) -> str | None:
    """The client's address as the login lockout sees it (one rule for both; see CLIENT_IP_PROXY_COUNT)."""
    from axes.helpers import get_client_ip_address

    return get_client_ip_address(request)


def _describe_origin(sender, history_instance, **kwargs) -> None:
    if not isinstance(history_instance, AuditedHistory):
        return
    request = getattr(HistoricalRecords.context, "request", None)
    if request is None:
        history_instance.history_source = SYSTEM
        return
    history_instance.history_source = request_source(request.path)
    history_instance.history_client_address = client_address(request)


def connect_history_signals() -> None:
    pre_create_historical_record.connect(_describe_origin, dispatch_uid="clinrec.history.origin")
