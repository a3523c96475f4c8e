"""Unit tests of the rule engine: every rule, every threshold edge, the config parsing and the findings order.

The engine is pure Python, so these tests need no database and use fixed instants, never the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from recommendations.engine import (
    RULES,
    Engine,
    EngineConfig,
    Finding,
    Fired,
    PatientSnapshot,
    ProcedureFact,
    RuleEngine,
    age_on,
)

AT = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def make_snapshot(
    *,
    birth_date: date | None = None,
    bmi: float | None = None,
    chronic_pain: bool = False,
    procedures: tuple[ProcedureFact, ...] = (),
) -> PatientSnapshot:
    return PatientSnapshot(
        patient_id="108", birth_date=birth_date, bmi=bmi, chronic_pain=chronic_pain, procedures=procedures
    )


def surgery(
    performed_at: datetime,
    *,
    name: str = "Total knee replacement",
    department: str = "orthopaedics",
    is_surgery: bool = True,
) -> ProcedureFact:
    return ProcedureFact(name=name, department=department, is_surgery=is_surgery, performed_at=performed_at)


def evaluate(snapshot: PatientSnapshot, config: EngineConfig | None = None, at: datetime = AT) -> list[Finding]:
    return RuleEngine(config).evaluate(snapshot, at=at)


def rules_fired(snapshot: PatientSnapshot, config: EngineConfig | None = None, at: datetime = AT) -> list[str]:
    return [finding.rule for finding in evaluate(snapshot, config, at)]


def reason_of(rule: str, snapshot: PatientSnapshot, config: EngineConfig | None = None) -> str:
    (finding,) = [finding for finding in evaluate(snapshot, config) if finding.rule == rule]
    return finding.reason


# physical_therapy


def test_age_exactly_65_with_chronic_pain_does_not_fire() -> None:
    snapshot = make_snapshot(birth_date=date(1960, 1, 1), chronic_pain=True)

    assert rules_fired(snapshot) == []


def test_66th_birthday_on_the_evaluation_date_with_chronic_pain_fires() -> None:
    snapshot = make_snapshot(birth_date=date(1959, 6, 15), chronic_pain=True)

    assert evaluate(snapshot) == [
        Finding(
            rule="physical_therapy",
            recommendation_name="Physical Therapy",
            reason="age 66 > 65 and chronic pain recorded",
            facts={"age": 66, "chronic_pain": True, "min_age": 65},
        )
    ]


def test_day_before_66th_birthday_is_still_65_and_does_not_fire() -> None:
    snapshot = make_snapshot(birth_date=date(1959, 6, 16), chronic_pain=True)

    assert rules_fired(snapshot) == []


def test_age_72_with_chronic_pain_reason_states_age_and_threshold() -> None:
    snapshot = make_snapshot(birth_date=date(1953, 3, 2), chronic_pain=True)

    assert reason_of("physical_therapy", snapshot) == "age 72 > 65 and chronic pain recorded"


def test_age_over_threshold_without_chronic_pain_does_not_fire() -> None:
    snapshot = make_snapshot(birth_date=date(1940, 1, 1), chronic_pain=False)

    assert rules_fired(snapshot) == []


def test_chronic_pain_without_birth_date_does_not_fire() -> None:
    snapshot = make_snapshot(birth_date=None, chronic_pain=True)

    assert rules_fired(snapshot) == []


def test_age_is_counted_on_the_calendar_date_of_at_in_its_own_timezone() -> None:
    snapshot = make_snapshot(birth_date=date(1959, 6, 16), chronic_pain=True)
    late_on_the_15th_utc = datetime(2025, 6, 15, 20, 0, tzinfo=UTC)
    same_instant_on_the_16th_in_sydney = late_on_the_15th_utc.astimezone(timezone(timedelta(hours=10)))

    assert rules_fired(snapshot, at=late_on_the_15th_utc) == []
    assert rules_fired(snapshot, at=same_instant_on_the_16th_in_sydney) == ["physical_therapy"]


def test_physical_therapy_uses_the_configured_age_threshold() -> None:
    config = EngineConfig(physical_therapy_min_age=70)
    snapshot_70 = make_snapshot(birth_date=date(1955, 1, 1), chronic_pain=True)
    snapshot_71 = make_snapshot(birth_date=date(1954, 1, 1), chronic_pain=True)

    assert rules_fired(snapshot_70, config) == []
    assert reason_of("physical_therapy", snapshot_71, config) == "age 71 > 70 and chronic pain recorded"


# weight_management


def test_bmi_exactly_30_does_not_fire() -> None:
    assert rules_fired(make_snapshot(bmi=30.0)) == []


def test_bmi_30_1_fires_with_reason() -> None:
    assert evaluate(make_snapshot(bmi=30.1)) == [
        Finding(
            rule="weight_management",
            recommendation_name="Weight Management Program",
            reason="BMI 30.1 > 30",
            facts={"bmi": 30.1, "min_bmi": 30.0},
        )
    ]


def test_missing_bmi_does_not_fire() -> None:
    assert rules_fired(make_snapshot(bmi=None)) == []


def test_bmi_reason_prints_whole_values_without_trailing_zero() -> None:
    assert reason_of("weight_management", make_snapshot(bmi=35.0)) == "BMI 35 > 30"


def test_bmi_reason_prints_the_recorded_value_without_rounding() -> None:
    assert reason_of("weight_management", make_snapshot(bmi=31.25)) == "BMI 31.25 > 30"


def test_bmi_just_above_threshold_is_never_printed_equal_to_it() -> None:
    assert reason_of("weight_management", make_snapshot(bmi=30.04)) == "BMI 30.04 > 30"


def test_weight_management_uses_the_configured_bmi_threshold() -> None:
    config = EngineConfig(weight_management_min_bmi=27.5)

    assert rules_fired(make_snapshot(bmi=27.5), config) == []
    assert reason_of("weight_management", make_snapshot(bmi=28.0), config) == "BMI 28 > 27.5"


# post_op_rehab


def test_recent_orthopaedic_surgery_fires_with_reason_and_the_procedure_as_facts() -> None:
    performed_at = AT - timedelta(days=12, hours=3)
    knee = ProcedureFact(
        name="Total knee replacement",
        department=" Orthopaedics",
        is_surgery=True,
        performed_at=performed_at,
        procedure_id="ortho-tkr",
        patient_procedure_id=41,
    )

    assert evaluate(make_snapshot(procedures=(knee,))) == [
        Finding(
            rule="post_op_rehab",
            recommendation_name="Post-Op Rehabilitation Plan",
            reason="orthopaedics surgery 'Total knee replacement' 12 days ago (within 90 days)",
            facts={
                "procedure": {
                    "id": "ortho-tkr",
                    "patient_procedure": 41,
                    "name": "Total knee replacement",
                    "department": "orthopaedics",
                    "performed_at": performed_at.isoformat(),
                },
                "window_days": 90,
                "departments": ["orthopaedics"],
            },
        )
    ]


def test_surgery_exactly_90_days_before_at_fires() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT - timedelta(days=90)),))

    assert reason_of("post_op_rehab", snapshot) == (
        "orthopaedics surgery 'Total knee replacement' 90 days ago (within 90 days)"
    )


def test_surgery_90_days_and_one_second_before_at_does_not_fire() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT - timedelta(days=90, seconds=1)),))

    assert rules_fired(snapshot) == []


def test_future_surgery_does_not_fire() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT + timedelta(seconds=1)), surgery(AT + timedelta(days=3))))

    assert rules_fired(snapshot) == []


def test_surgery_performed_at_the_evaluation_instant_fires() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT),))

    assert reason_of("post_op_rehab", snapshot) == (
        "orthopaedics surgery 'Total knee replacement' less than a day ago (within 90 days)"
    )


def test_surgery_one_day_ago_reason_is_singular() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT - timedelta(days=1, hours=2)),))

    assert reason_of("post_op_rehab", snapshot) == (
        "orthopaedics surgery 'Total knee replacement' 1 day ago (within 90 days)"
    )


def test_non_surgical_orthopaedic_procedure_does_not_fire() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT - timedelta(days=5), name="Knee X-ray", is_surgery=False),))

    assert rules_fired(snapshot) == []


def test_recent_surgery_outside_admissible_departments_does_not_fire() -> None:
    snapshot = make_snapshot(
        procedures=(surgery(AT - timedelta(days=5), name="Coronary bypass", department="cardiology"),)
    )

    assert rules_fired(snapshot) == []


def test_procedure_department_is_matched_case_insensitively_and_stripped() -> None:
    snapshot = make_snapshot(procedures=(surgery(AT - timedelta(days=5), department="  OrthoPAEDICS "),))

    assert reason_of("post_op_rehab", snapshot) == (
        "orthopaedics surgery 'Total knee replacement' 5 days ago (within 90 days)"
    )


def test_surgery_in_any_of_several_configured_departments_fires() -> None:
    config = EngineConfig.from_values(
        physical_therapy_min_age=65,
        weight_management_min_bmi=30,
        rehab_departments=" Orthopaedics, Neurosurgery ,",
        rehab_window_days=90,
    )
    spine = make_snapshot(
        procedures=(surgery(AT - timedelta(days=20), name="Lumbar discectomy", department="Neurosurgery"),)
    )
    heart = make_snapshot(
        procedures=(surgery(AT - timedelta(days=20), name="Coronary bypass", department="cardiology"),)
    )

    assert reason_of("post_op_rehab", spine, config) == (
        "neurosurgery surgery 'Lumbar discectomy' 20 days ago (within 90 days)"
    )
    assert rules_fired(heart, config) == []


def test_most_recent_qualifying_surgery_is_named_in_the_reason() -> None:
    snapshot = make_snapshot(
        procedures=(
            surgery(AT - timedelta(days=60), name="Hip replacement"),
            surgery(AT - timedelta(days=10), name="Shoulder arthroscopy"),
            surgery(AT - timedelta(days=30), name="ACL reconstruction"),
            surgery(AT - timedelta(days=2), name="Heart valve repair", department="cardiology"),
            surgery(AT - timedelta(days=1), name="Physiotherapy session", is_surgery=False),
            surgery(AT + timedelta(days=5), name="Scheduled knee replacement"),
        )
    )

    (finding,) = evaluate(snapshot)
    assert finding.reason == "orthopaedics surgery 'Shoulder arthroscopy' 10 days ago (within 90 days)"
    assert finding.facts["procedure"]["name"] == "Shoulder arthroscopy"
    assert finding.facts["procedure"]["performed_at"] == (AT - timedelta(days=10)).isoformat()


def test_post_op_rehab_uses_the_configured_window() -> None:
    config = EngineConfig(rehab_window_days=30)
    inside = make_snapshot(procedures=(surgery(AT - timedelta(days=30)),))
    outside = make_snapshot(procedures=(surgery(AT - timedelta(days=31)),))

    assert reason_of("post_op_rehab", inside, config) == (
        "orthopaedics surgery 'Total knee replacement' 30 days ago (within 30 days)"
    )
    assert rules_fired(outside, config) == []


def test_no_admissible_departments_means_no_surgery_qualifies() -> None:
    config = EngineConfig.from_values(
        physical_therapy_min_age=65,
        weight_management_min_bmi=30,
        rehab_departments=" , ",
        rehab_window_days=90,
    )
    snapshot = make_snapshot(procedures=(surgery(AT - timedelta(days=5)),))

    assert config.rehab_departments == frozenset()
    assert rules_fired(snapshot, config) == []


# missing data and the whole evaluation


def test_patient_without_birth_date_or_bmi_gets_only_rules_with_recorded_facts() -> None:
    snapshot = make_snapshot(
        birth_date=None, bmi=None, chronic_pain=True, procedures=(surgery(AT - timedelta(days=12)),)
    )

    findings = evaluate(snapshot)

    assert [finding.rule for finding in findings] == ["post_op_rehab"]
    for finding in findings:
        assert "age" not in finding.reason
        assert "BMI" not in finding.reason


def test_patient_with_no_recorded_facts_gets_nothing() -> None:
    assert evaluate(make_snapshot()) == []


def test_patient_with_no_procedures_still_gets_the_other_rules() -> None:
    snapshot = make_snapshot(birth_date=date(1950, 1, 1), bmi=32.4, chronic_pain=True, procedures=())

    assert rules_fired(snapshot) == ["physical_therapy", "weight_management"]


def test_findings_come_in_the_order_physical_therapy_weight_management_post_op_rehab() -> None:
    snapshot = make_snapshot(
        birth_date=date(1953, 3, 2),
        bmi=31.2,
        chronic_pain=True,
        procedures=(surgery(AT - timedelta(days=12)),),
    )

    assert [(finding.rule, finding.recommendation_name, finding.reason) for finding in evaluate(snapshot)] == [
        ("physical_therapy", "Physical Therapy", "age 72 > 65 and chronic pain recorded"),
        ("weight_management", "Weight Management Program", "BMI 31.2 > 30"),
        (
            "post_op_rehab",
            "Post-Op Rehabilitation Plan",
            "orthopaedics surgery 'Total knee replacement' 12 days ago (within 90 days)",
        ),
    ]


def test_rules_registry_lists_the_three_rules_in_reporting_order() -> None:
    assert [(key, rule.key, rule.recommendation_name) for key, rule in RULES.items()] == [
        ("physical_therapy", "physical_therapy", "Physical Therapy"),
        ("weight_management", "weight_management", "Weight Management Program"),
        ("post_op_rehab", "post_op_rehab", "Post-Op Rehabilitation Plan"),
    ]


def test_rule_functions_return_reason_and_facts_or_none() -> None:
    config = EngineConfig()
    rule = RULES["weight_management"]

    assert rule.recommendation_name == "Weight Management Program"
    assert rule.check(make_snapshot(bmi=31.2), AT, config) == Fired("BMI 31.2 > 30", {"bmi": 31.2, "min_bmi": 30.0})
    assert rule.check(make_snapshot(bmi=29.0), AT, config) is None


def test_rule_engine_satisfies_the_engine_protocol() -> None:
    assert isinstance(RuleEngine(), Engine)


def test_rule_engine_without_config_uses_the_spec_defaults() -> None:
    assert RuleEngine().config == EngineConfig()


def test_naive_evaluation_instant_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RuleEngine().evaluate(make_snapshot(), at=datetime(2025, 6, 15, 12, 0))


def test_naive_procedure_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        surgery(datetime(2025, 6, 1, 9, 0))


def test_snapshot_procedures_given_as_a_list_are_stored_as_a_tuple() -> None:
    snapshot = PatientSnapshot(
        patient_id="102",
        birth_date=None,
        bmi=None,
        chronic_pain=False,
        procedures=[surgery(AT - timedelta(days=3))],  # type: ignore[arg-type]
    )

    assert isinstance(snapshot.procedures, tuple)
    assert rules_fired(snapshot) == ["post_op_rehab"]


# EngineConfig


def test_engine_config_defaults_follow_the_spec() -> None:
    config = EngineConfig()

    assert config.physical_therapy_min_age == 65
    assert config.weight_management_min_bmi == 30.0
    assert config.rehab_departments == frozenset({"orthopaedics"})
    assert config.rehab_window_days == 90


def test_from_values_parses_a_comma_separated_department_list() -> None:
    config = EngineConfig.from_values(
        physical_therapy_min_age=65,
        weight_management_min_bmi=30.0,
        rehab_departments=" Orthopaedics, Neurosurgery ,",
        rehab_window_days=90,
    )

    assert config.rehab_departments == frozenset({"orthopaedics", "neurosurgery"})


def test_from_values_normalises_an_iterable_of_departments_and_drops_empties() -> None:
    config = EngineConfig.from_values(
        physical_therapy_min_age=65,
        weight_management_min_bmi=30.0,
        rehab_departments=["ORTHOPAEDICS ", "", "  ", " Sports Medicine", "orthopaedics"],
        rehab_window_days=90,
    )

    assert config.rehab_departments == frozenset({"orthopaedics", "sports medicine"})


def test_from_values_accepts_environment_strings() -> None:
    config = EngineConfig.from_values(
        physical_therapy_min_age=" 70 ",
        weight_management_min_bmi="27.5",
        rehab_departments="orthopaedics",
        rehab_window_days="60",
    )

    assert config == EngineConfig(
        physical_therapy_min_age=70,
        weight_management_min_bmi=27.5,
        rehab_departments=frozenset({"orthopaedics"}),
        rehab_window_days=60,
    )


def test_from_values_accepts_a_zero_day_window() -> None:
    config = EngineConfig.from_values(
        physical_therapy_min_age=65,
        weight_management_min_bmi=30,
        rehab_departments="orthopaedics",
        rehab_window_days=0,
    )

    assert config.rehab_window_days == 0


def test_constructor_normalises_departments_too() -> None:
    assert EngineConfig(rehab_departments=frozenset({" Orthopaedics "})).rehab_departments == frozenset(
        {"orthopaedics"}
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rehab_window_days": -1}, "rehab_window_days must be zero or a positive number of days"),
        ({"physical_therapy_min_age": 0}, "physical_therapy_min_age must be a positive number of years"),
        ({"physical_therapy_min_age": -65}, "physical_therapy_min_age must be a positive number of years"),
        ({"weight_management_min_bmi": 0}, "weight_management_min_bmi must be a positive BMI"),
        ({"weight_management_min_bmi": -30.0}, "weight_management_min_bmi must be a positive BMI"),
        ({"weight_management_min_bmi": "nan"}, "weight_management_min_bmi must be a finite number"),
        ({"weight_management_min_bmi": "thirty"}, "weight_management_min_bmi must be a finite number"),
        ({"physical_therapy_min_age": "sixty-five"}, "physical_therapy_min_age must be a whole number"),
        ({"physical_therapy_min_age": 65.5}, "physical_therapy_min_age must be a whole number"),
        ({"rehab_window_days": "ninety"}, "rehab_window_days must be a whole number"),
        ({"rehab_window_days": True}, "rehab_window_days must be a whole number"),
    ],
)
def test_from_values_rejects_invalid_values_with_a_clear_message(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "physical_therapy_min_age": 65,
        "weight_management_min_bmi": 30.0,
        "rehab_departments": "orthopaedics",
        "rehab_window_days": 90,
    }
    values.update(overrides)

    with pytest.raises(ValueError, match=message):
        EngineConfig.from_values(**values)  # type: ignore[arg-type]


def test_from_values_rejects_a_department_that_is_not_a_name() -> None:
    with pytest.raises(TypeError, match="rehab_departments must contain department names"):
        EngineConfig.from_values(
            physical_therapy_min_age=65,
            weight_management_min_bmi=30.0,
            rehab_departments=["orthopaedics", 7],  # type: ignore[list-item]
            rehab_window_days=90,
        )


def test_constructor_rejects_a_negative_window() -> None:
    with pytest.raises(ValueError, match="rehab_window_days"):
        EngineConfig(rehab_window_days=-5)


# age_on


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2025, 6, 14), 65),
        (date(2025, 6, 15), 66),
        (date(2025, 12, 31), 66),
    ],
)
def test_age_on_counts_whole_years_around_the_birthday(on: date, expected: int) -> None:
    assert age_on(date(1959, 6, 15), on) == expected


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(2023, 2, 28), 22),
        (date(2023, 3, 1), 23),
        (date(2024, 2, 28), 23),
        (date(2024, 2, 29), 24),
        (date(2024, 3, 1), 24),
    ],
)
def test_age_on_a_feb_29_birthday_turns_older_on_mar_1_in_non_leap_years(on: date, expected: int) -> None:
    assert age_on(date(2000, 2, 29), on) == expected


def test_age_on_the_birth_date_is_zero() -> None:
    assert age_on(date(2025, 6, 15), date(2025, 6, 15)) == 0
