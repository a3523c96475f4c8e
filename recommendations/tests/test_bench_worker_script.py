"""The worker benchmark keeps working: a few events through the real RabbitMQ and one real worker, each once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_service

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.services


def test_bench_worker_drains_its_events_and_prints_the_rate_and_settings():
    broker_url = require_service("rabbitmq")
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "CELERY_TASK_DEFAULT_QUEUE"}}
    env["CELERY_BROKER_URL"] = broker_url
    result = subprocess.run(
        [sys.executable, "scripts/bench_worker.py", "--events", "12", "--timeout", "120"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if line.strip())
    assert "acks_late=True" in lines["worker"]
    assert "'consumed': 12" in lines["handled"] and "'notifications': 12" in lines["handled"]
    assert lines["throughput"].endswith("events/s (first to last consumed)")
    assert float(lines["throughput"].split()[0]) > 0
