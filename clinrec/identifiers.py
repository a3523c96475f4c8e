"""Caller-given identifiers: the FHIR id syntax, 1–64 characters from `[A-Za-z0-9.-]`.

The hospital's patient index and information system own these ids; ClinRec stores them as strings, so `108`
and `por-123` are both valid, and a JSON number such as 108 is accepted and stored as "108".
"""

import re

from django.core.validators import RegexValidator
from django.db import models
from rest_framework import serializers

FHIR_ID_MAX_LENGTH = 64
# "." and ".." fit the syntax but are not reachable in a URL (clients normalise them away), so they are refused.
FHIR_ID_PATTERN = r"^(?!\.{1,2}$)[A-Za-z0-9.\-]{1,64}$"

fhir_id_validator = RegexValidator(
    regex=FHIR_ID_PATTERN,
    message="Must be 1–64 characters from A–Z, a–z, 0–9, '-' and '.' (the FHIR id syntax), and not '.' or '..'.",
    code="invalid_id",
)


# NUL and lone surrogates: no database text column can hold them (PostgreSQL refuses them outright).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# What a lookup sends instead: outside the id syntax too, so it can match no stored id, and any database takes it.
NEVER_AN_ID = "\ufffd"


class FhirIdModelField(models.CharField):
    """A caller-given primary key or reference in the FHIR id syntax."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", FHIR_ID_MAX_LENGTH)
        kwargs.setdefault("validators", [fhir_id_validator])
        super().__init__(*args, **kwargs)

    def get_prep_value(self, value):
        # A lookup by a value no id can contain (PostgreSQL cannot even receive a NUL) matches nothing, like any
        # other id that does not exist: the admin, forms, filters and DRF then answer "no such object", not 500.
        value = super().get_prep_value(value)
        if isinstance(value, str):
            value = UNSTORABLE.sub(NEVER_AN_ID, value)
        return value

    def get_db_prep_save(self, value, connection):
        # Storing one is a bug, not a miss: the validators refuse such ids before any save.
        if isinstance(value, str) and UNSTORABLE.search(value):
            raise ValueError(f"Field '{self.name}' cannot store {value!r}: not a FHIR id.")
        return super().get_db_prep_save(value, connection)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("validators", None)
        if kwargs.get("max_length") == FHIR_ID_MAX_LENGTH:
            kwargs.pop("max_length")
        return name, path, args, kwargs


class FhirIdField(serializers.CharField):
    """Serializer field for a FHIR id: accepts a string or a JSON integer, never a float, bool or object."""

    default_error_messages = {
        "invalid_type": "Must be a string or an integer, not {type}.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", FHIR_ID_MAX_LENGTH)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators.append(fhir_id_validator)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            self.fail("invalid_type", type=type(data).__name__)
        return str(data)


class FhirIdRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference to a caller-identified object: checked against the FHIR id syntax before any lookup.

    So `{"patient": "a\\u0000"}` is a 400 naming `patient` and the syntax, not a query PostgreSQL refuses.
    References to integer keys (link records) keep DRF's behaviour.
    """

    default_error_messages = {
        "invalid_id": fhir_id_validator.message,
        "invalid_type": FhirIdField.default_error_messages["invalid_type"],
    }

    def to_internal_value(self, data):
        queryset = self.get_queryset()
        if isinstance(queryset.model._meta.pk, FhirIdModelField):
            if isinstance(data, bool) or not isinstance(data, (str, int)):
                self.fail("invalid_type", type=type(data).__name__)
            data = str(data)
            if not re.fullmatch(FHIR_ID_PATTERN, data):
                self.fail("invalid_id")
        return super().to_internal_value(data)
