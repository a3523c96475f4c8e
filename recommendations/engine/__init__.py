"""ClinRec's recommendation engine: pure Python, no HTTP and no ORM; a patient snapshot in, findings out.

Import from here rather than from the submodules; these names are the contract the evaluation service,
the settings and the seed data code against.
"""

from .config import EngineConfig
from .findings import Finding
from .parameters import (
    ENABLED,
    InvalidParameters,
    config_from_parameters,
    parameters_from_config,
    parameters_json_schema,
)
from .rule_engine import Engine, RuleEngine
from .rules import PHYSICAL_THERAPY, POST_OP_REHAB, RULES, WEIGHT_MANAGEMENT, Fired, Parameter, Rule
from .snapshot import PatientSnapshot, ProcedureFact, age_on

__all__ = [
    "ENABLED",
    "PHYSICAL_THERAPY",
    "POST_OP_REHAB",
    "RULES",
    "WEIGHT_MANAGEMENT",
    "Engine",
    "EngineConfig",
    "Finding",
    "Fired",
    "InvalidParameters",
    "Parameter",
    "PatientSnapshot",
    "ProcedureFact",
    "Rule",
    "RuleEngine",
    "age_on",
    "config_from_parameters",
    "parameters_from_config",
    "parameters_json_schema",
]
