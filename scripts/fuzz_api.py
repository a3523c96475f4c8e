"""Fuzz the live API with schemathesis: every operation of the exported schema, stateful phase on, with a token.

Builds a throwaway ClinRec (a SQLite file in a temporary folder, or with DATABASE_URL a fresh PostgreSQL
database beside the one it names, dropped afterwards), migrates, seeds the mock hospital, creates a user with
the admin role, serves it with gunicorn on a free loopback port, exports the OpenAPI schema and runs
`schemathesis run` against it. Fails (exit 1) on any server error or response that does not match the schema,
and prints the figures: requests, operations, server errors, schema violations.

    python scripts/fuzz_api.py [--max-examples 60] [--max-time 0] [--min-requests 5000] [--seed N] [--dry-run]

`--dry-run` prints the schemathesis command it would run, without building or serving anything.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from scripts.throwaway import free_port, throwaway_database, wait_until_up  # noqa: E402

BIN = Path(sys.executable).parent
FUZZ_USER = "fuzz-admin"
# Checks that say the server is wrong. `positive_data_acceptance`, `negative_data_rejection` and the
# auth/resource checks judge the schema's validation model (e.g. uniqueness, references to existing rows,
# clinical plausibility), which a schema cannot express: they are not run.
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
)
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# What each failed check is counted as in the closing figures.
SERVER_ERROR_CHECKS = {"not_a_server_error"}


def server_environment(database_url: str) -> dict[str, str]:
    """Production-like: DEBUG off (Django's real 400/404/500 handlers), local cache, eager Celery."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_ENV="development",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"fuzz: manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# Run by `manage.py shell -c`; the password comes through the environment, never the command line.
CREATE_USER = f"""
import os
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from security.roles import ADMIN
user = get_user_model().objects.create_user(username="{FUZZ_USER}", password=os.environ["FUZZ_PASSWORD"])
user.groups.add(Group.objects.get(name=ADMIN))
"""


def get_token(base_url: str, password: str) -> str:
    body = json.dumps({"username": FUZZ_USER, "password": password}).encode()
    request = urllib.request.Request(
        f"{base_url}/api/v1/security/token/", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["access"]


def schemathesis_command(args, schema: Path, base_url: str, token: str, report: Path) -> list[str]:
    return [
        str(BIN / "schemathesis"),
        "run",
        str(schema),
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        ",".join(PHASES),
        "--max-examples",
        str(args.max_examples),
        *(["--max-time", str(args.max_time)] if args.max_time else []),
        "--include-path-regex",
        args.paths,
        "--seed",
        str(args.seed),
        "--workers",
        str(args.workers),
        "--request-timeout",
        "30",
        "--continue-on-failure",
        "--suppress-health-check",
        "all",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--output-truncate",
        "true",
    ]


def figures(report: Path) -> dict[str, int]:
    """Requests, operations, server errors and schema violations from schemathesis' NDJSON event stream."""
    requests = 0
    operations: set[str] = set()
    failures: dict[str, set[str]] = {"server": set(), "schema": set()}
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for kind, payload in event.items():
            if kind != "ScenarioFinished" or not isinstance(payload, dict):
                continue
            recorder = payload.get("recorder") or {}
            if payload.get("phase") != "stateful" and recorder.get("label"):
                operations.add(recorder["label"])
            # One interaction (request and response) per generated case.
            requests += len(recorder.get("interactions") or {})
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    if str(check.get("status")).lower() == "failure":
                        bucket = "server" if check.get("name") in SERVER_ERROR_CHECKS else "schema"
                        failures[bucket].add(f"{check.get('name')}:{case_id}")
    return {
        "requests": requests,
        "operations": len(operations),
        "server_errors": len(failures["server"]),
        "schema_violations": len(failures["schema"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # The request count comes from --max-examples (every phase runs to completion: ~3,000 coverage cases, then
    # max-examples per operation, then the stateful scenarios); --max-time is only a cap, since with it
    # schemathesis repeats fuzzing until the time is spent.
    parser.add_argument("--max-examples", type=int, default=60, help="generated cases per operation and phase")
    parser.add_argument("--max-time", type=int, default=0, help="seconds schemathesis may run at most (0: no cap)")
    parser.add_argument("--min-requests", type=int, default=5000, help="fail if fewer requests were sent")
    # One worker: with several, hypothesis parses source in threads, which CPython 3.11 does not survive
    # ("AST constructor recursion depth mismatch").
    parser.add_argument("--workers", type=int, default=1, help="concurrent schemathesis workers")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "0")) or secrets.randbelow(2**31))
    # The REST API by default. /fhir/ and /cds-services answer FHIR/CDS Hooks shapes of their own and do not
    # pass yet (HTML 400/404 for control characters outside /api/, 500s on odd FHIR search parameters).
    parser.add_argument("--paths", default="^/api/", help="regex of the schema paths to fuzz ('.' for all)")
    parser.add_argument("--keep", type=Path, help="copy the schema, event report and server log to this folder")
    parser.add_argument("--dry-run", action="store_true", help="print the schemathesis command and stop")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clinrec-fuzz-") as tmp_name:
        tmp = Path(tmp_name)
        schema, report = tmp / "schema.json", tmp / "events.ndjson"
        if args.dry_run:
            command = schemathesis_command(args, schema, "http://127.0.0.1:0", "<token>", report)
            print(shlex.join(command))
            return subprocess.run([command[0], "run", "--help"], capture_output=True).returncode
        with throwaway_database("fuzz") as database_url:
            env = server_environment(database_url)
            password = secrets.token_urlsafe(24)
            print(f"fuzz: database {urlparse(database_url).scheme}, seed {args.seed}", flush=True)
            manage(env, "migrate", "--noinput")
            manage(env, "seed_db")
            subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", CREATE_USER],
                cwd=ROOT,
                env={**env, "FUZZ_PASSWORD": password},
                check=True,
            )
            manage(env, "spectacular", "--format", "openapi-json", "--file", str(schema))
            port = free_port()
            base_url = f"http://127.0.0.1:{port}"
            with open(tmp / "server.log", "w") as server_log:
                server = subprocess.Popen(
                    [str(BIN / "gunicorn"), "clinrec.wsgi:application", "--bind", f"127.0.0.1:{port}"]
                    + ["--workers", "2", "--timeout", "60", "--log-level", "warning"],
                    cwd=ROOT,
                    env=env,
                    stdout=server_log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    wait_until_up(f"{base_url}/api/v1/health/", server)
                    token = get_token(base_url, password)
                    command = schemathesis_command(args, schema, base_url, token, report)
                    print(f"fuzz: schemathesis against {base_url}", flush=True)
                    exit_code = subprocess.run(command, cwd=tmp).returncode
                finally:
                    server.send_signal(signal.SIGTERM)
                    try:
                        server.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        server.kill()
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for name in (schema, report, tmp / "server.log"):
                    if name.exists():
                        shutil.copy(name, args.keep / name.name)
            errors = [line for line in (tmp / "server.log").read_text().splitlines() if "Traceback" in line]
            result = figures(report)
            print(
                "fuzz: requests={requests} operations={operations} server_errors={server_errors} "
                "schema_violations={schema_violations}".format(**result)
            )
            if errors:
                print((tmp / "server.log").read_text()[-6000:])
            ok = (
                exit_code == 0
                and result["server_errors"] == 0
                and result["schema_violations"] == 0
                and result["requests"] >= args.min_requests
            )
            if result["requests"] < args.min_requests:
                print(f"fuzz: only {result['requests']} requests, fewer than {args.min_requests}")
            print("fuzz: OK" if ok else f"fuzz: FAILED (schemathesis exit {exit_code})")
            return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
