from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_migrate


def ensure_first_rule_set_after_migrate(sender, *, using: str = "default", **kwargs) -> None:
    """After `migrate`, make rule-set version 1 from the settings if there is none, so the admin shows it."""
    from recommendations.models import RuleSet
    from recommendations.services.rule_sets import ensure_first_rule_set

    if sender.name == "recommendations" and RuleSet._meta.db_table in connections[using].introspection.table_names():
        ensure_first_rule_set()


class RecommendationsConfig(AppConfig):
    """Recommendation definitions, rule sets, what was recommended to whom, the event outbox, notifications,
    analytics."""

    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self) -> None:
        post_migrate.connect(ensure_first_rule_set_after_migrate, dispatch_uid="recommendations.first_rule_set")
