"""The ceiling of `make bench`: a bare Django view serving a patient's JSON, for comparison with ClinRec's API.

No DRF, no middleware, no database: the view checks the Bearer token with PyJWT (HS256, the API's signing key)
and answers the JSON it keeps in the local-memory cache (read once from BENCH_BARE_JSON, the file the benchmark
wrote from ClinRec's own answer). Served by gunicorn like the API: `gunicorn scripts.bench_bare:application`.
"""

from __future__ import annotations

import os
from pathlib import Path

import django
import jwt
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bare"}},
)
django.setup()


def patient(request, pk: str):
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
    try:
        jwt.decode(header[7:], settings.SECRET_KEY, algorithms=["HS256"])
    except jwt.PyJWTError:
        return JsonResponse({"detail": "Given token not valid."}, status=401)
    body = cache.get(f"patient:{pk}")
    if body is None:
        body = Path(os.environ["BENCH_BARE_JSON"]).read_bytes()
        cache.set(f"patient:{pk}", body, timeout=None)
    return HttpResponse(body, content_type="application/json")


urlpatterns = [path("patients/<str:pk>/", patient)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
