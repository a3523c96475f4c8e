from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    """Recommendation definitions, what was recommended to whom, the event outbox, notifications, analytics."""

    name = "recommendations"
    verbose_name = "Recommendations"
