"""The ClinRec Django project: settings, URLs, the Celery app and the pieces every app shares."""

from clinrec.celery import app as celery_app

__all__ = ("celery_app",)
