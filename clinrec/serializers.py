"""Serializer helpers shared by the apps."""

from __future__ import annotations

import re
from datetime import date

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import serializers

from clinrec.identifiers import FhirIdField, FhirIdRelatedField
from clinrec.validators import ProhibitControlCharacters, free_text, single_line_text

# A date written the right way (YYYY-MM-DD, optionally the start of a date-time): what is left to be wrong is
# the calendar, e.g. 1950-02-30.
_ISO_DATE_SHAPE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:$|[T ])")


def _impossible_date(value: object) -> str | None:
    """Why `value`, shaped like an ISO date, is no day of the calendar; None when it is one (or not that shape)."""
    match = _ISO_DATE_SHAPE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    try:
        date(*(int(part) for part in match.groups()))
    except ValueError as exc:
        return f"{match.group(0).rstrip('T ')} is not a date of the calendar ({exc})."
    return None


class ImpossibleDateMixin:
    """Reports an impossible date (1950-02-30, 2026-02-30T10:00Z) as such, not as a "wrong format"."""

    default_error_messages = {"impossible": "{reason}"}

    def to_internal_value(self, value):
        reason = _impossible_date(value)
        if reason is not None:
            self.fail("impossible", reason=reason)
        return super().to_internal_value(value)


class CalendarDateField(ImpossibleDateMixin, serializers.DateField):
    """A date field that reports an impossible date as such."""


class CalendarDateTimeField(ImpossibleDateMixin, serializers.DateTimeField):
    """A date-time field that reports an impossible date as such."""


class ClinRecModelSerializer(serializers.ModelSerializer):
    """ModelSerializer that takes JSON `null` for an optional text field as "absent" and stores it blank.

    Integrators often send null for what they do not know; the API answers such fields with "". Its model
    date and date-time fields say when a date is impossible rather than "wrong format".
    Foreign keys to caller-identified objects are checked against the id syntax before any lookup, and every
    writable text field refuses control characters (line breaks too, unless the model field is a TextField),
    declared fields included: the model's validators reach only the fields DRF builds itself.
    """

    serializer_related_field = FhirIdRelatedField
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateField: CalendarDateField,
        models.DateTimeField: CalendarDateTimeField,
    }

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            if (
                isinstance(field, serializers.CharField)
                and not isinstance(field, FhirIdField)
                and not field.read_only
                and not any(isinstance(validator, ProhibitControlCharacters) for validator in field.validators)
            ):
                field.validators.append(self._text_validator(field.source))
        return fields

    def _text_validator(self, source: str) -> ProhibitControlCharacters:
        try:
            model_field = self.Meta.model._meta.get_field(source)
        except FieldDoesNotExist:
            return single_line_text
        return free_text if isinstance(model_field, models.TextField) else single_line_text

    def to_internal_value(self, data):
        if isinstance(data, dict):
            blank_for_null = {
                name
                for name, field in self.fields.items()
                if isinstance(field, serializers.CharField) and field.allow_blank and not field.allow_null
            }
            data = {key: "" if key in blank_for_null and value is None else value for key, value in data.items()}
        return super().to_internal_value(data)


class ExpandableModelSerializer(ClinRecModelSerializer):
    """Replaces a foreign-key id by the nested object when the view's `?expand=` names it.

    `expand_serializers` maps the field name to the serializer class of the related object.
    """

    expand_serializers: dict[str, type[serializers.Serializer]] = {}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in self.context.get("expand", ()):
            nested = self._nested_serializer(name)
            if nested is not None:
                related = getattr(instance, name)
                data[name] = nested.to_representation(related) if related is not None else None
        return data

    def _nested_serializer(self, name: str) -> serializers.Serializer | None:
        # One nested serializer per field for the whole page: building one per row costs more than the rows.
        cache = self.__dict__.setdefault("_nested_serializers", {})
        if name not in cache:
            serializer_class = self.expand_serializers.get(name)
            cache[name] = serializer_class(context=self.context) if serializer_class is not None else None
        return cache[name]


class CallerIdentifiedModelSerializer(ClinRecModelSerializer):
    """For resources whose id the caller gives: the declared `id` field on create, read-only afterwards.

    The id is fixed by the path on update; the view rejects a body id that differs.
    """

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["id"] = FhirIdField(read_only=True)
        return fields
