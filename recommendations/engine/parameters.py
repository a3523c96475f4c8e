"""Rule-set parameters as data: validated against the registry's bounds, turned into an `EngineConfig` and back.

A rule set stores `{"<rule>": {"enabled": bool, "<parameter>": value, ...}, ...}` for every rule of `RULES`.
`config_from_parameters` checks every value against its `Parameter` (type, bounds) and reports every problem at
once, keyed by its dotted path (`weight_management.min_bmi`), so the API and the admin name the field.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

from .config import EngineConfig, normalise_department
from .rules import RULES, Parameter

ENABLED = "enabled"


class InvalidParameters(ValueError):
    """Rule-set parameters that break the registry's rules; `errors` maps a dotted path to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors.items()))
        self.errors = errors


def parameters_from_config(config: EngineConfig) -> dict[str, dict[str, Any]]:
    """The JSON-ready parameters of every rule in `config`, in registry order."""
    parameters: dict[str, dict[str, Any]] = {}
    for rule in RULES.values():
        values: dict[str, Any] = {ENABLED: rule.key not in config.disabled_rules}
        for parameter in rule.parameters:
            value = getattr(config, parameter.config_field)
            values[parameter.key] = sorted(value) if parameter.kind == "departments" else value
        parameters[rule.key] = values
    return parameters


def _bounds(parameter: Parameter) -> str:
    low, high = parameter.minimum, parameter.maximum
    if low is not None and high is not None:
        return f"between {low:g} and {high:g} {parameter.unit}"
    if low is not None:
        return f"at least {low:g} {parameter.unit}"
    return f"at most {high:g} {parameter.unit}"


def _clean(parameter: Parameter, value: Any) -> Any:
    """The value in its stored type; raises ValueError with the message a user should read."""
    if parameter.kind == "departments":
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            raise ValueError("must be a list of department names.")
        if any(unicodedata.category(character) == "Cc" for name in value for character in name):
            raise ValueError("department names may not contain control characters.")
        names = sorted({normalise_department(name) for name in value} - {""})
        if parameter.minimum is not None and len(names) < parameter.minimum:
            raise ValueError(f"must name at least {parameter.minimum:g} department.")
        return names
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be {'a whole number' if parameter.kind == 'integer' else 'a number'}.")
    if parameter.kind == "integer":
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be a whole number.")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError("must be a finite number.")
    if (parameter.minimum is not None and value < parameter.minimum) or (
        parameter.maximum is not None and value > parameter.maximum
    ):
        raise ValueError(f"must be {_bounds(parameter)}, got {value:g}.")
    return value


def config_from_parameters(raw: Any, *, base: EngineConfig | None = None) -> EngineConfig:
    """The engine config of rule-set parameters; values left out keep those of `base` (default: the defaults).

    Raises `InvalidParameters` naming every unknown rule or parameter and every value out of its bounds.
    """
    current = parameters_from_config(base or EngineConfig())
    errors: dict[str, str] = {}
    if not isinstance(raw, Mapping):
        raise InvalidParameters({"": "must be an object with one entry per rule."})
    for rule_key, values in raw.items():
        rule = RULES.get(rule_key)
        if rule is None:
            errors[str(rule_key)] = f"unknown rule; the rules are {', '.join(RULES)}."
            continue
        if not isinstance(values, Mapping):
            errors[rule_key] = "must be an object of this rule's parameters."
            continue
        by_key = {parameter.key: parameter for parameter in rule.parameters}
        for key, value in values.items():
            path = f"{rule_key}.{key}"
            if key == ENABLED:
                if not isinstance(value, bool):
                    errors[path] = "must be true or false."
                else:
                    current[rule_key][ENABLED] = value
                continue
            parameter = by_key.get(key)
            if parameter is None:
                errors[path] = f"unknown parameter; {rule_key} has {', '.join([ENABLED, *by_key])}."
                continue
            try:
                current[rule_key][key] = _clean(parameter, value)
            except ValueError as exc:
                errors[path] = str(exc)
    if errors:
        raise InvalidParameters(errors)
    values_by_field: dict[str, Any] = {}
    for rule in RULES.values():
        for parameter in rule.parameters:
            values_by_field[parameter.config_field] = current[rule.key][parameter.key]
    values_by_field["rehab_departments"] = frozenset(values_by_field["rehab_departments"])
    disabled = frozenset(key for key, values in current.items() if not values[ENABLED])
    return EngineConfig(**values_by_field, disabled_rules=disabled)


def parameters_json_schema() -> dict[str, Any]:
    """The JSON schema of rule-set parameters, derived from the registry (for the OpenAPI document)."""
    properties: dict[str, Any] = {}
    for rule in RULES.values():
        rule_properties: dict[str, Any] = {
            ENABLED: {"type": "boolean", "description": "Whether the rule fires at all.", "default": True}
        }
        for parameter in rule.parameters:
            description = f"{parameter.description} Unit: {parameter.unit}."
            if parameter.kind == "departments":
                schema: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
                if parameter.minimum is not None:
                    schema["minItems"] = int(parameter.minimum)
            else:
                schema = {"type": parameter.kind}
                if parameter.minimum is not None:
                    schema["minimum"] = parameter.minimum
                if parameter.maximum is not None:
                    schema["maximum"] = parameter.maximum
            properties_entry = {**schema, "description": description, "default": parameter.default}
            rule_properties[parameter.key] = properties_entry
        properties[rule.key] = {
            "type": "object",
            "description": f"{rule.recommendation_name}: fires when {rule.fires_when}.",
            "properties": rule_properties,
        }
    return {"type": "object", "properties": properties}
