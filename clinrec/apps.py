from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ClinrecConfig(AppConfig):
    """The project itself: shared API plumbing (cache, errors, pagination) and its signal wiring."""

    name = "clinrec"
    verbose_name = "ClinRec"

    def ready(self) -> None:
        from clinrec import cache, history

        cache.connect_invalidation_signals()
        history.connect_history_signals()


class ClinRecAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with ClinRec's site (clinrec/admin.py) as `admin.site`; named in INSTALLED_APPS."""

    default = False  # "clinrec" alone still means ClinrecConfig
    default_site = "clinrec.admin.ClinRecAdminSite"
