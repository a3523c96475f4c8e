"""The load half of scripts/benchmark.py (`make bench`): throwaway database, gunicorn, wrk, and the table.

wrk (Debian's package) is the load generator; when it is missing the benchmark installs it with apt-get
(as root, on Debian or Ubuntu) and otherwise stops with the command to run. Nothing here talks to anything but
127.0.0.1. The database is a temporary SQLite file, or, with DATABASE_URL set to PostgreSQL, a database of its
own on that server (created and dropped); REDIS_URL, when set, is used with a key prefix of its own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from scripts.throwaway import free_port, throwaway_database, wait_until_up

TOOLS = Path(__file__).resolve().parent.parent  # this checkout: its scripts and its virtualenv's Python
WORKERS = 2
THREADS = 2

SETUP = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from patients.models import Patient
from procedures.models import PatientProcedure, Procedure

User = get_user_model()
tokens = {}
for name in ("admin", "viewer"):
    user, _ = User.objects.get_or_create(username=f"bench-{name}")
    user.groups.set([Group.objects.get(name=name)])
    tokens[name] = str(RefreshToken.for_user(user).access_token)
heavy, _ = Patient.objects.get_or_create(
    id="bench-heavy", defaults={"name": "Long history", "bmi": 33.0, "chronic_pain": True}
)
knee = Procedure.objects.get(pk="ortho-tkr")
now = timezone.now()
if not heavy.procedures.exists():
    for days in range(100):
        PatientProcedure.objects.create(patient=heavy, procedure=knee, performed_at=now - timedelta(days=days * 3))
print("BENCH" + json.dumps(tokens))
"""


@dataclass(frozen=True)
class Case:
    label: str
    port_key: str  # "api" or "bare"
    path: str
    token: str  # "admin" or "viewer"
    method: str = "GET"


CASES = [
    Case("patient, cached, admin", "api", "/api/v1/patients/108/", "admin"),
    Case("patient, cached, viewer", "api", "/api/v1/patients/108/", "viewer"),
    Case(
        "50 patient procedures, expand", "api", "/api/v1/patient-procedures/?limit=50&expand=patient,procedure", "admin"
    ),
    Case("evaluate, 100 procedures", "api", "/api/v1/patients/bench-heavy/evaluate/", "admin", "POST"),
    Case("bare Django view, same patient", "bare", "/patients/108/", "admin"),
]


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package when it is missing and this is root on apt."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("wrk is missing: installing Debian's package (apt-get install wrk)...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-q"], check=False, stdout=subprocess.DEVNULL)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, stdout=subprocess.DEVNULL)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("make bench needs wrk: install it (Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install wrk).")


def run(cmd: list[str], *, env: dict, cwd: Path) -> str:
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


@contextmanager
def gunicorn(app: str, *, port: int, env: dict, cwd: Path):
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    """Requests per second, p50 and p99 in ms, and the count of non-2xx answers, from `wrk --latency`."""

    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
        return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def load(wrk: str, case: Case, *, url: str, token: str, duration: float, connections: int, folder: Path) -> dict:
    script = folder / f"{case.method.lower()}.lua"
    script.write_text(f'wrk.method = "{case.method}"\n')
    result = subprocess.run(
        [
            wrk,
            f"-t{THREADS}",
            f"-c{connections}",
            f"-d{max(duration, 1):.0f}s",
            "--latency",
            "-s",
            str(script),
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"wrk failed: {result.stderr[-2000:]}")
    return parse_wrk(result.stdout)


def run_load_benchmark(*, app_dir: Path, duration: float, rounds: int, connections: int) -> None:
    wrk = ensure_wrk()
    python = sys.executable
    secret = secrets.token_urlsafe(50)
    with throwaway_database("bench") as database_url, tempfile.TemporaryDirectory(prefix="clinrec-bench-") as folder:
        folder = Path(folder)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))},
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "clinrec.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secret,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CACHE_KEY_PREFIX": f"bench-{os.getpid()}",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(app_dir),
        }
        run([python, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=app_dir)
        run([python, "manage.py", "seed_db"], env=env, cwd=app_dir)
        output = run([python, "manage.py", "shell", "-c", SETUP], env=env, cwd=app_dir)
        tokens = json.loads(output.split("BENCH", 1)[1].strip().splitlines()[0])
        run([python, "manage.py", "collectstatic", "--noinput", "-v", "0"], env=env, cwd=app_dir)
        ports = {"api": free_port(), "bare": free_port()}
        bare_env = {**env, "PYTHONPATH": str(TOOLS), "BENCH_BARE_JSON": str(folder / "patient.json")}
        with gunicorn("clinrec.wsgi:application", port=ports["api"], env=env, cwd=app_dir):
            request = urllib.request.Request(
                f"http://127.0.0.1:{ports['api']}/api/v1/patients/108/",
                headers={"Authorization": f"Bearer {tokens['admin']}"},
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                (folder / "patient.json").write_bytes(answer.read())
            with gunicorn("scripts.bench_bare:application", port=ports["bare"], env=bare_env, cwd=TOOLS):
                results: dict[str, list[dict]] = {case.label: [] for case in CASES}
                for _ in range(rounds):
                    for case in CASES:
                        url = f"http://127.0.0.1:{ports[case.port_key]}{case.path}"
                        results[case.label].append(
                            load(
                                wrk,
                                case,
                                url=url,
                                token=tokens[case.token],
                                duration=duration,
                                connections=connections,
                                folder=folder,
                            )
                        )
    print_table(results, database_url=database_url, duration=duration, rounds=rounds, connections=connections)


def print_table(results: dict, *, database_url: str, duration: float, rounds: int, connections: int) -> None:
    def median(label: str, key: str) -> float:
        return statistics.median(result[key] for result in results[label])

    bare = median(CASES[-1].label, "rps")
    cache = "redis" if os.environ.get("REDIS_URL") else "locmem"
    print(
        f"database={urlparse(database_url).scheme} cache={cache} gunicorn workers={WORKERS} "
        f"wrk -t{THREADS} -c{connections} -d{duration:.0f}s rounds={rounds} (median of rounds)"
    )
    print(f"{'case':<32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'non-2xx':>8}")
    for case in CASES:
        rps = median(case.label, "rps")
        errors = sum(result["errors"] for result in results[case.label])
        ratio = rps / bare if bare else float("nan")
        print(
            f"{case.label:<32} {rps:>9.0f} {median(case.label, 'p50'):>8.2f} {median(case.label, 'p99'):>8.2f} "
            f"{ratio:>7.2f}x {errors:>8}"
        )
