"""The Makefile the spec names: `make help` lists its targets, and the API shortcuts (get-token, eval-patient,
get-recom) send what they are given — checked against a small fake API on a free local port."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]

SPEC_TARGETS = [
    "help",
    "venv",
    "run",
    "test",
    "migrate",
    "seed-db",
    "run-app",
    "run-consumer",
    "run-rabbitmq",
    "run-redis",
    "docker-up",
    "docker-down",
    "logs",
    "get-token",
    "eval-patient",
    "get-recom",
]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_make(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """`make ARGS` in the repository, isolated from an outer make (`make test`) and from stray variables."""
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PATIENT_ID", "PASS"}}
    env.update(env_extra or {})
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(BASE_DIR), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def help_lines() -> dict[str, str]:
    result = run_make("help")
    assert result.returncode == 0, result.stderr
    described = {}
    for line in ANSI.sub("", result.stdout).splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s+(\S.*)$", line)
        if match:
            described[match.group(1)] = match.group(2).strip()
    return described


def test_help_is_the_default_goal():
    result = run_make()

    assert result.returncode == 0, result.stderr
    assert ANSI.sub("", result.stdout) == ANSI.sub("", run_make("help").stdout)


@pytest.mark.parametrize("target", SPEC_TARGETS)
def test_help_lists_every_spec_target_with_a_description(target):
    described = help_lines()

    assert target in described, f"`make help` does not list {target!r}:\n{sorted(described)}"
    assert len(described[target]) >= 10, f"{target!r} has no real description: {described[target]!r}"


def test_get_token_dry_run_uses_the_given_user_and_password():
    result = run_make("-n", "get-token", "USER=alice", "PASS=secret", env_extra={"USER": "shell-login"})

    assert result.returncode == 0, result.stderr
    assert "username=alice" in result.stdout
    assert "password=secret" in result.stdout
    assert "shell-login" not in result.stdout


def test_get_token_does_not_take_the_login_name_from_the_shell():
    result = run_make("-n", "get-token", env_extra={"USER": "shell-login"})

    assert result.returncode == 0, result.stderr
    assert "shell-login" not in result.stdout
    assert "username=admin" in result.stdout


@pytest.mark.parametrize("target", ["eval-patient", "get-recom"])
def test_patient_targets_without_patient_id_exit_non_zero_with_usage(target):
    result = run_make(target)

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert re.search(rf"Usage: make {target} PATIENT_ID=\S+", output), output


# --- The shortcuts against a fake API ------------------------------------------------------------------------


class FakeApi(BaseHTTPRequestHandler):
    """Answers the three endpoints the shortcuts call, and remembers what it was sent."""

    requests: list[dict] = []

    def _record(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        entry = {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization", ""),
            "form": parse_qs(body, keep_blank_values=True),
        }
        self.requests.append(entry)
        return entry

    def _json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        entry = self._record()
        if entry["path"] == "/api/v1/security/token/":
            self._json(200, {"access": "fake-access-token", "refresh": "fake-refresh"})
        elif entry["path"].endswith("/evaluate/"):
            self._json(200, {"patient": "108", "recommendations": []})
        else:
            self._json(404, {"detail": "not found"})

    def do_GET(self):
        self._record()
        self._json(200, {"count": 0, "next": None, "previous": None, "results": []})

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    FakeApi.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", FakeApi.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_get_token_posts_the_credentials_form_encoded_and_prints_the_access_token(fake_api):
    url, seen = fake_api
    password = "S3cret&p+ss=word%"

    result = run_make("-s", "get-token", f"API_URL={url}", "USER=alice", f"PASS={password}")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "fake-access-token"
    [token_request] = seen
    assert token_request["path"] == "/api/v1/security/token/"
    assert token_request["form"] == {"username": ["alice"], "password": [password]}


def test_get_token_defaults_to_the_dev_admin_even_with_a_shell_user(fake_api):
    url, seen = fake_api

    result = run_make("-s", "get-token", f"API_URL={url}", env_extra={"USER": "shell-login"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert seen[0]["form"]["username"] == ["admin"]


def test_eval_patient_gets_a_token_then_evaluates_with_it(fake_api):
    url, seen = fake_api

    result = run_make("-s", "eval-patient", "PATIENT_ID=108", f"API_URL={url}", "USER=alice", "PASS=secret")

    assert result.returncode == 0, result.stdout + result.stderr
    assert [(r["method"], urlsplit(r["path"]).path) for r in seen] == [
        ("POST", "/api/v1/security/token/"),
        ("POST", "/api/v1/patients/108/evaluate/"),
    ]
    assert seen[0]["form"]["username"] == ["alice"]
    assert seen[1]["authorization"] == "Bearer fake-access-token"
    assert json.loads(result.stdout)["patient"] == "108"


def test_get_recom_lists_the_patients_recommendations_with_a_token(fake_api):
    url, seen = fake_api

    result = run_make("-s", "get-recom", "PATIENT_ID=108", f"API_URL={url}")

    assert result.returncode == 0, result.stdout + result.stderr
    listing = seen[-1]
    assert listing["method"] == "GET"
    assert urlsplit(listing["path"]).path == "/api/v1/patient-recommendations/"
    assert parse_qs(urlsplit(listing["path"]).query)["patient"] == ["108"]
    assert listing["authorization"] == "Bearer fake-access-token"
