"""Filters shared by the apps' FilterSets."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 datetime, converted to UTC.

    Python takes offsets up to ±23:59, PostgreSQL only up to ±15:59: `2024-01-01T00:00-20:00` reached the query
    as given and was a 500. In UTC any offset is fine; a value that leaves the calendar in UTC is a 400.
    """

    def to_python(self, value):
        value = super().to_python(value)
        if value is not None and value.tzinfo is not None:
            try:
                value = value.astimezone(UTC)
            except OverflowError as exc:
                raise forms.ValidationError("Datetime value out of range.", code="overflow") from exc
        return value


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """IsoDateTimeFilter whose value is compared in UTC (see UtcIsoDateTimeField)."""

    field_class = UtcIsoDateTimeField
