"""WSGI entry point, used by gunicorn (`clinrec.wsgi:application`) and runserver."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinrec.settings")

application = get_wsgi_application()
