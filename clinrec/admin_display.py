"""How the admin's lists show values, the same on every page: dates short enough to fit a laptop's columns."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone


def short_datetime(value: datetime | date | None) -> str:
    """`2026-11-27 16:32` in the server's time zone (the locale's "Nov. 27, 2026, 4:32 p.m." takes two lines)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    return f"{value:%Y-%m-%d}"
