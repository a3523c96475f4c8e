"""The rule registry is the one place a rule kind is defined; everything else follows it.

Validation of rule-set parameters comes from each parameter's bounds, a definition's `rule` is one of the
registry's keys (or null: manual only), and the OpenAPI enum, the standard definitions and the README's
rules table are derived from it.
"""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from drf_spectacular.generators import SchemaGenerator

from recommendations.definitions import STANDARD_DEFINITIONS
from recommendations.engine import RULES, EngineConfig, InvalidParameters, config_from_parameters
from recommendations.management.commands import rules_table
from recommendations.models import Recommendation
from recommendations.tests.factories import RecommendationFactory

URL = "/api/v1/recommendations/"
NUMERIC = [
    (rule, parameter) for rule in RULES.values() for parameter in rule.parameters if parameter.kind != "departments"
]


# --- parameters (pure Python) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "parameter"), NUMERIC, ids=lambda item: getattr(item, "key", ""))
def test_each_numeric_parameter_accepts_its_bounds_and_refuses_beyond_them(rule, parameter):
    for value in (parameter.minimum, parameter.maximum):
        config = config_from_parameters({rule.key: {parameter.key: value}})
        assert getattr(config, parameter.config_field) == value
    for value in (parameter.minimum - 1, parameter.maximum + 1):
        with pytest.raises(InvalidParameters) as refused:
            config_from_parameters({rule.key: {parameter.key: value}})
        assert list(refused.value.errors) == [f"{rule.key}.{parameter.key}"]
        assert parameter.unit in refused.value.errors[f"{rule.key}.{parameter.key}"]


def test_every_problem_is_reported_at_once():
    with pytest.raises(InvalidParameters) as refused:
        config_from_parameters(
            {"weight_management": {"min_bmi": 0}, "post_op_rehab": {"departments": [], "window_days": -3}}
        )

    assert set(refused.value.errors) == {
        "weight_management.min_bmi",
        "post_op_rehab.departments",
        "post_op_rehab.window_days",
    }


def test_registry_defaults_are_the_engines_defaults():
    defaults = {rule.key: {p.key: p.default for p in rule.parameters} for rule in RULES.values()}

    assert config_from_parameters(defaults) == EngineConfig()


def test_standard_definitions_follow_the_registry():
    assert [(d.rule, d.name) for d in STANDARD_DEFINITIONS] == [
        (rule.key, rule.recommendation_name) for rule in RULES.values()
    ]


# --- a definition's rule ----------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("rule", ["physcial_therapy", "PHYSICAL_THERAPY", "custom_rule", " weight_management"])
def test_creating_a_definition_with_a_rule_not_in_the_registry_is_400(admin_client_jwt, rule):
    response = admin_client_jwt.post(URL, {"id": "por-9", "name": "Typo", "rule": rule}, format="json")

    assert response.status_code == 400
    assert "rule" in response.json()
    assert not Recommendation.objects.filter(pk="por-9").exists()


@pytest.mark.django_db
def test_patching_a_definition_to_an_unknown_rule_is_400_and_keeps_the_old_one(admin_client_jwt):
    response = admin_client_jwt.patch(f"{URL}weight-management/", {"rule": "weight_managment"}, format="json")

    assert response.status_code == 400
    assert "rule" in response.json()
    assert Recommendation.objects.get(pk="weight-management").rule == "weight_management"


@pytest.mark.django_db
def test_a_definition_without_rule_is_manual_only(viewer_client):
    RecommendationFactory(id="por-123", rule=None)

    listed = {row["id"]: row["manual_only"] for row in viewer_client.get(URL).json()["results"]}

    assert listed == {"por-123": True, "physical-therapy": False, "weight-management": False, "post-op-rehab": False}


@pytest.mark.django_db
def test_the_openapi_enum_of_rule_is_the_registry():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    components = schema["components"]["schemas"]
    rule_schema = components["Recommendation"]["properties"]["rule"]
    enum_name = next(ref["$ref"].rsplit("/", 1)[1] for ref in rule_schema["oneOf"] if "$ref" in ref)

    assert [value for value in components[enum_name]["enum"] if value] == list(RULES)
    parameters = components["RuleSet"]["properties"]["parameters"]["properties"]
    assert list(parameters) == list(RULES)
    assert parameters["weight_management"]["properties"]["min_bmi"]["minimum"] == 10


@pytest.mark.django_db
def test_the_admin_offers_the_registry_rules_and_manual_only(client, admin_user_session):
    page = client.get("/admin/recommendations/recommendation/add/").content.decode()

    for rule in RULES:
        assert f'value="{rule}"' in page
    assert "manual only" in page


@pytest.mark.django_db
def test_the_admin_list_shows_manual_only_for_a_definition_without_rule(client, admin_user_session):
    RecommendationFactory(id="por-123", name="Fall prevention", rule=None)

    page = client.get("/admin/recommendations/recommendation/").content.decode()

    assert "manual only" in page


@pytest.mark.django_db
def test_the_admin_refuses_a_rule_outside_the_registry(client, admin_user_session):
    response = client.post(
        "/admin/recommendations/recommendation/add/", {"id": "por-9", "name": "Typo", "rule": "custom_rule"}
    )

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Recommendation.objects.filter(pk="por-9").exists()


# --- the README -----------------------------------------------------------------------------------------------


def test_the_readme_rules_table_is_generated_from_the_registry():
    call_command("rules_table", "--check")


def test_the_readme_check_fails_when_the_registry_changes(monkeypatch):
    monkeypatch.setattr(rules_table, "rules_markdown_table", lambda: "| rule |\n|---|\n| `new_rule` |")

    with pytest.raises(CommandError, match="differs from the registry"):
        call_command("rules_table", "--check")
