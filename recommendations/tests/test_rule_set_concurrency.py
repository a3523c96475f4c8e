"""Concurrent rule-set writes against the real PostgreSQL: activations queue up, version numbers never clash.

Threads need PostgreSQL (row locks); these run in the PostgreSQL pass, like `test_concurrency.py`.
"""

from __future__ import annotations

import pytest

from recommendations.models import RuleSet, RuleSetActivation
from recommendations.services import RuleSetError, activate_rule_set, create_rule_set
from recommendations.tests.test_concurrency import THREADS, needs_postgresql, run_at_once


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_activations_leave_exactly_one_version_active_and_record_each():
    versions = [create_rule_set(parameters={"weight_management": {"min_bmi": 31 + n}}) for n in range(4)]

    def activate(rule_set: RuleSet):
        def job():
            try:
                return activate_rule_set(rule_set=rule_set, reason=f"thread for v{rule_set.version}")
            except RuleSetError:  # a version another thread already made active
                return None

        return job

    run_at_once([activate(version) for version in versions])

    assert RuleSet.objects.filter(active=True).count() == 1
    recorded = list(RuleSetActivation.objects.exclude(rule_set_id=1).order_by("activated_at", "id"))
    assert sorted(record.rule_set_id for record in recorded) == sorted(version.version for version in versions)
    # Each activation names the version it replaced: the chain is unbroken.
    assert [record.previous_version for record in recorded] == [1, *[r.rule_set_id for r in recorded[:-1]]]
    assert RuleSet.objects.get(active=True).version == recorded[-1].rule_set_id


@needs_postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_creations_get_distinct_versions():
    created = run_at_once(
        [lambda n=n: create_rule_set(parameters={"physical_therapy": {"min_age": 60 + n}}) for n in range(THREADS)]
    )

    assert sorted(rule_set.version for rule_set in created) == list(range(2, THREADS + 2))
    assert RuleSet.objects.filter(active=True).count() == 1
