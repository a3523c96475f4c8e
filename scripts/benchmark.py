"""Benchmark of ClinRec: queries and latency per request in-process, or throughput under load over HTTP.

Both run against a throwaway database (never the one `make run` uses) with the configured settings, so
`DATABASE_URL=postgres://… REDIS_URL=redis://… python scripts/benchmark.py` measures the production shape.

    python scripts/benchmark.py [--rows 500] [--repeat 30]          # queries and latency (make benchmark)
    python scripts/benchmark.py --load [--duration 10] [--rounds 3]  # req/s, p50, p99 (make bench)

`--load` builds the throwaway database with the app's own commands, starts gunicorn (2 workers) on a free
loopback port and loads it with wrk (installed with apt-get when missing; scripts/load.py says how), 16
connections: a cached patient read as an admin and as a viewer, a page of 50 patient procedures with
`expand`, the evaluation of a patient with a 100-procedure history, and, side by side, a bare Django view
serving the same patient (scripts/bench_bare.py), with each row's ratio to it. Rounds alternate the cases;
each figure is the median of the rounds. `--app-dir` benchmarks another checkout of ClinRec (e.g. main, for a
before/after) with this one's tools.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinrec.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def build_hospital(rows: int) -> None:
    from clinrec.cache import bump_versions
    from patients.models import Patient
    from procedures.models import PatientProcedure, Procedure

    Patient.objects.bulk_create(
        Patient(id=f"b{n}", name=f"Patient {n}", chronic_pain=n % 2 == 0, bmi=25 + n % 10) for n in range(rows)
    )
    knee = Procedure.objects.create(id="knee", name="Knee replacement", department="orthopaedics", is_surgery=True)
    now = timezone.now()
    PatientProcedure.objects.bulk_create(
        PatientProcedure(patient_id=f"b{n}", procedure=knee, performed_at=now - timedelta(days=n % 120))
        for n in range(rows)
    )
    Patient.objects.create(id="heavy", name="Long history", bmi=33.0, chronic_pain=True)
    PatientProcedure.objects.bulk_create(
        PatientProcedure(patient_id="heavy", procedure=knee, performed_at=now - timedelta(days=n)) for n in range(rows)
    )
    bump_versions(Patient, Procedure, PatientProcedure)


def measure(client: APIClient, method: str, url: str, repeat: int, *, cold: bool) -> tuple[int, float, float]:
    timings, queries = [], 0
    for _ in range(repeat):
        if cold:
            from clinrec.cache import clear_read_cache

            clear_read_cache()
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = getattr(client, method)(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.content[:200])
        queries = len(captured)
    timings.sort()
    return queries, statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=500, help="patients, and procedures of the heavy patient")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--load", action="store_true", help="throughput under load over HTTP (make bench)")
    parser.add_argument("--duration", type=float, default=10.0, help="--load: seconds per case and round")
    parser.add_argument("--rounds", type=int, default=3, help="--load: rounds (the cases alternate)")
    parser.add_argument("--connections", type=int, default=16, help="--load: open connections")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="--load: the ClinRec checkout to serve")
    args = parser.parse_args()
    if args.load:
        from scripts.load import run_load_benchmark

        run_load_benchmark(
            app_dir=args.app_dir.resolve(),
            duration=args.duration,
            rounds=args.rounds,
            connections=args.connections,
        )
        return

    setup_test_environment()
    # Its own test database: never the one `make run` uses, nor the test suite's `test_…` one.
    connection.settings_dict.setdefault("TEST", {})["NAME"] = (
        None if connection.vendor == "sqlite" else "test_clinrec_benchmark"
    )
    runner = DiscoverRunner(verbosity=0, interactive=False)
    databases = runner.setup_databases()
    try:
        build_hospital(args.rows)
        user = get_user_model().objects.create_superuser("bench", "", "bench-Password-1")
        client = APIClient()
        client.force_authenticate(user)
        cases = [
            ("list patients, 500 per page", "get", "/api/v1/patients/?limit=500", True),
            ("list patients, 500 per page (cached)", "get", "/api/v1/patients/?limit=500", False),
            (
                "patient-procedures ?expand, 5 rows",
                "get",
                "/api/v1/patient-procedures/?limit=5&expand=patient,procedure",
                True,
            ),
            (
                "patient-procedures ?expand, 500 rows",
                "get",
                "/api/v1/patient-procedures/?limit=500&expand=patient,procedure",
                True,
            ),
            (
                "patient-procedures ?expand, 500 (cached)",
                "get",
                "/api/v1/patient-procedures/?limit=500&expand=patient,procedure",
                False,
            ),
            ("get one patient", "get", "/api/v1/patients/b1/", True),
            (f"evaluate, {args.rows} procedures (repeat)", "post", "/api/v1/patients/heavy/evaluate/", True),
            ("evaluate, 1 procedure (repeat)", "post", "/api/v1/patients/b0/evaluate/", True),
        ]
        backend = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(f"database={connection.vendor} cache={backend} rows={args.rows} repeat={args.repeat}")
        print(f"{'request':<46} {'queries':>7} {'median ms':>10} {'p95 ms':>8}")
        for label, method, url, cold in cases:
            queries, median, p95 = measure(client, method, url, args.repeat, cold=cold)
            print(f"{label:<46} {queries:>7} {median:>10.1f} {p95:>8.1f}")
    finally:
        runner.teardown_databases(databases)


if __name__ == "__main__":
    main()
