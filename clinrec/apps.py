from django.apps import AppConfig


class ClinrecConfig(AppConfig):
    """The project itself: shared API plumbing (cache, errors, pagination) and its signal wiring."""

    name = "clinrec"
    verbose_name = "ClinRec"

    def ready(self) -> None:
        from clinrec import cache, history

        cache.connect_invalidation_signals()
        history.connect_history_signals()
