"""`scripts/fuzz_api.py` (make fuzz, CI) keeps working: its schemathesis command parses, and it reads figures
from schemathesis' event stream."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_script():
    spec = importlib.util.spec_from_file_location("fuzz_api", ROOT / "scripts" / "fuzz_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_prints_a_schemathesis_command_that_schemathesis_accepts():
    result = subprocess.run(
        [sys.executable, "scripts/fuzz_api.py", "--dry-run", "--max-examples", "7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    command = shlex.split(result.stdout.strip().splitlines()[-1])
    options = dict(zip(command, command[1:], strict=False))
    assert options["--phases"].split(",") == ["examples", "coverage", "fuzzing", "stateful"]
    assert {"not_a_server_error", "response_schema_conformance"} <= set(options["--checks"].split(","))
    assert options["--max-examples"] == "7"
    assert options["--header"].startswith("Authorization: Bearer ")


def test_every_check_the_script_asks_for_is_one_schemathesis_knows():
    fuzz = load_script()
    help_text = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", "--help"], capture_output=True, text=True
    ).stdout
    for check in fuzz.CHECKS:
        assert check in help_text


def test_figures_count_requests_operations_server_errors_and_schema_violations(tmp_path):
    fuzz = load_script()

    def scenario(phase, label, checks):
        interactions = {case: {"request": {}, "response": {}} for case in checks}
        return {
            "ScenarioFinished": {
                "phase": phase,
                "recorder": {"label": label, "interactions": interactions, "checks": checks},
            }
        }

    ok = [{"name": "not_a_server_error", "status": "success"}]
    events = [
        {"PhaseStarted": {"phase": "fuzzing"}},
        scenario("fuzzing", "GET /a/", {"c1": ok, "c2": ok}),
        scenario("fuzzing", "POST /a/", {"c3": [{"name": "not_a_server_error", "status": "failure"}]}),
        scenario(
            "stateful",
            "Stateful tests",
            {"c4": [{"name": "response_schema_conformance", "status": "failure"}], "c5": ok},
        ),
    ]
    report = tmp_path / "events.ndjson"
    report.write_text("\n".join(json.dumps(event) for event in events))
    assert fuzz.figures(report) == {"requests": 5, "operations": 2, "server_errors": 1, "schema_violations": 1}
