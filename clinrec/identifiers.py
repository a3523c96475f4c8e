"""Caller-given identifiers: the FHIR id syntax, 1–64 characters from `[A-Za-z0-9.-]`.

The hospital's patient index and information system own these ids; ClinRec stores them as strings, so `108`
and `por-123` are both valid, and a JSON number such as 108 is accepted and stored as "108".
"""

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


class FhirIdModelField(models.CharField):
    """A caller-given primary key or reference in the FHIR id syntax."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", FHIR_ID_MAX_LENGTH)
        kwargs.setdefault("validators", [fhir_id_validator])
        super().__init__(*args, **kwargs)

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
