"""The project's own bookkeeping tables; today only the version tokens of the read cache (see clinrec.cache)."""

from __future__ import annotations

from django.db import models


class CacheVersion(models.Model):
    """The current version token of one model's cached reads; a write replaces it, which retires every entry."""

    # "patients.patient": Django's lower-case model label; the primary key makes the read's lookup one index scan.
    label = models.CharField(primary_key=True, max_length=200)
    token = models.CharField(max_length=32)

    class Meta:
        verbose_name = "cache version"

    def __str__(self) -> str:
        return f"{self.label}={self.token}"
