"""`GET /api/v1/health/`: is the database, the cache and the broker reachable? For load balancers and on-call."""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from clinrec.redis_breaker import bypass_circuit_breaker


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"backend": connection.vendor}


def check_cache() -> dict:
    key = f"health:{uuid.uuid4().hex}"
    # Past the circuit breaker: report what Redis does now, not what it did when the circuit opened.
    with bypass_circuit_breaker():
        cache.set(key, "ok", timeout=10)
        if cache.get(key) != "ok":
            raise ConnectionError("the cache did not return what was written")
        cache.delete(key)
    return {"backend": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]}


def check_broker() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"backend": "eager", "detail": "no broker: events are handled in the API process"}
    from clinrec.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return {"backend": "amqp"}


CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker}


def run_checks() -> tuple[bool, dict]:
    """Run every check; healthy unless a check named in HEALTH_REQUIRED_CHECKS failed."""
    results = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            result = {"status": "up", **check()}
        except Exception as exc:  # noqa: BLE001 - any failure is a finding, not an error of this endpoint
            result = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
            if name in settings.HEALTH_REQUIRED_CHECKS:
                healthy = False
        result["required"] = name in settings.HEALTH_REQUIRED_CHECKS
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        results[name] = result
    return healthy, results


# Outside ATOMIC_REQUESTS: opening the request's transaction needs the database, so a database outage would
# be a 500 before any check ran, instead of the 503 with the report that load balancers and on-call read.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class HealthView(APIView):
    """Health of ClinRec and the services it uses; no token needed."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Health check",
        description="200 when every required service answers (status `ok`, or `degraded` if an optional one is "
        "down), 503 when a required one is down. HEALTH_REQUIRED_CHECKS names the required ones.",
        responses={200: OpenApiResponse(description="Healthy"), 503: OpenApiResponse(description="Unhealthy")},
        tags=["health"],
    )
    def get(self, request):
        healthy, results = run_checks()
        all_up = all(result["status"] == "up" for result in results.values())
        body = {"status": ("ok" if all_up else "degraded") if healthy else "unhealthy", "checks": results}
        return Response(body, status=200 if healthy else 503)
