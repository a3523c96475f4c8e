from django.apps import AppConfig


class AuditConfig(AppConfig):
    """The audit trail: the history of users (the clinical models keep their own), and a patient's history API."""

    name = "audit"
    verbose_name = "Audit trail"
