from django.apps import AppConfig


class PatientsConfig(AppConfig):
    """Patients: who ClinRec evaluates."""

    name = "patients"
    verbose_name = "Patients"
