from django.apps import AppConfig


class ProceduresConfig(AppConfig):
    """The procedure catalogue and each patient's procedure history."""

    name = "procedures"
    verbose_name = "Procedures"
