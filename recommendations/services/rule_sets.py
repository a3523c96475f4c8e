"""Rule sets: creating a version of the rules' parameters, activating one, and the active one's engine config.

Versions are immutable: `create_rule_set` always writes a new, inactive version (an edit in the admin too), and
`activate_rule_set` is the one recorded way to change which version the engine uses. The first version is made
from the settings (`PHYSICAL_THERAPY_MIN_AGE`, `WEIGHT_MANAGEMENT_MIN_BMI`, `ADMISSIBLE_DEPARTMENTS_FOR_REHAB`,
`REHAB_WINDOW_DAYS`) after `migrate` or on first use, so a deployment keeps the behaviour its environment gave.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from recommendations.engine import (
    POST_OP_REHAB,
    EngineConfig,
    config_from_parameters,
    parameters_from_config,
)
from recommendations.models import RuleSet, RuleSetActivation

logger = logging.getLogger(__name__)

FIRST_VERSION_REASON = "First version, from the deployment's settings (environment)."


class RuleSetError(ValueError):
    """A rule-set operation that cannot be done as asked (e.g. activating without a reason)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parameters_from_settings() -> dict[str, dict[str, Any]]:
    """The parameters the environment gives; an empty department list becomes the rehab rule switched off.

    A rule set needs at least one admissible department, and "no department" meant "never fires" before rule
    sets existed, so the behaviour is kept by disabling the rule (with the default departments stored).
    """
    config = EngineConfig.from_values(
        physical_therapy_min_age=settings.PHYSICAL_THERAPY_MIN_AGE,
        weight_management_min_bmi=settings.WEIGHT_MANAGEMENT_MIN_BMI,
        rehab_departments=settings.ADMISSIBLE_DEPARTMENTS_FOR_REHAB,
        rehab_window_days=settings.REHAB_WINDOW_DAYS,
    )
    parameters = parameters_from_config(config)
    if not config.rehab_departments:
        parameters[POST_OP_REHAB].update(
            enabled=False, departments=parameters_from_config(EngineConfig())[POST_OP_REHAB]["departments"]
        )
    config_from_parameters(parameters)  # the registry's bounds apply to the environment's values too
    return parameters


def ensure_first_rule_set() -> RuleSet | None:
    """Create version 1, active, from the settings when no version exists yet; returns it (None if some existed)."""
    if RuleSet.objects.exists():
        return None
    try:
        with transaction.atomic():
            now = timezone.now()
            rule_set = RuleSet.objects.create(
                version=1,
                parameters=parameters_from_settings(),
                active=True,
                note="Made from the settings.",
                created_at=now,
                activated_at=now,
                activation_reason=FIRST_VERSION_REASON,
            )
            RuleSetActivation.objects.create(rule_set=rule_set, activated_at=now, reason=FIRST_VERSION_REASON)
    except IntegrityError:  # a concurrent first use made it
        return None
    logger.info("Created rule set version 1 from the settings: %s", rule_set.parameters)
    return rule_set


def active_rule_set() -> RuleSet:
    """The active version (made from the settings on first use)."""
    rule_set = RuleSet.objects.filter(active=True).first()
    if rule_set is None:
        ensure_first_rule_set()
        rule_set = RuleSet.objects.get(active=True)
    return rule_set


def rule_set_config(rule_set: RuleSet) -> EngineConfig:
    """The engine config a stored version describes."""
    return config_from_parameters(rule_set.parameters)


@transaction.atomic
def create_rule_set(
    *, parameters: Any, created_by: Any = None, note: str = "", based_on: RuleSet | None = None
) -> RuleSet:
    """Save a new, inactive version: `parameters` over those of `based_on` (default: the active version).

    Rules and parameters left out keep the base's values. Raises `InvalidParameters` (nothing is written)
    when a value breaks the registry's bounds or names an unknown rule or parameter.
    """
    base = based_on or active_rule_set()
    config = config_from_parameters(parameters, base=rule_set_config(base))
    # Every version locked (as activation does): concurrent creations queue up, and each reads the latest
    # number only once the previous one committed. The retry covers a first version made meanwhile.
    list(RuleSet.objects.select_for_update().order_by("version").values_list("version", flat=True))
    for _attempt in range(3):
        version = (RuleSet.objects.aggregate(latest=Max("version"))["latest"] or 0) + 1
        try:
            with transaction.atomic():
                return RuleSet.objects.create(
                    version=version,
                    parameters=parameters_from_config(config),
                    created_by=created_by if getattr(created_by, "pk", None) else None,
                    note=note,
                )
        except IntegrityError:  # another version took the number at the same moment: take the next
            continue
    raise RuleSetError("version", "Could not allocate a version number; try again.")


@transaction.atomic
def activate_rule_set(*, rule_set: RuleSet, activated_by: Any = None, reason: str) -> RuleSet:
    """Make `rule_set` the active version, recording who, when and why; the previous one stays readable.

    Raises `RuleSetError` without a reason or when the version is already active. Past recommendations keep
    their provenance: nothing made under the previous version is touched.
    """
    reason = (reason or "").strip()
    if not reason:
        raise RuleSetError("reason", "Say why this version is activated.")
    # Every version locked: concurrent activations queue up, and exactly one version ends up active.
    versions = {item.version: item for item in RuleSet.objects.select_for_update().order_by("version")}
    target = versions[rule_set.version]
    previous = next((item for item in versions.values() if item.active), None)
    if previous is not None and previous.version == target.version:
        raise RuleSetError("version", f"Rule set version {target.version} is already active.")
    now = timezone.now()
    user = activated_by if getattr(activated_by, "pk", None) else None
    if previous is not None:
        # save(), not update(): the audit trail records the deactivation too (and the cache is told).
        previous.active = False
        previous.save(update_fields=["active"])
    target.active = True
    target.activated_by = user
    target.activated_at = now
    target.activation_reason = reason
    target.save(update_fields=["active", "activated_by", "activated_at", "activation_reason"])
    RuleSetActivation.objects.create(
        rule_set=target,
        previous_version=previous.version if previous is not None else None,
        activated_by=user,
        activated_at=now,
        reason=reason,
    )
    logger.info("Rule set version %s activated by %s: %s", target.version, user, reason)
    return target
