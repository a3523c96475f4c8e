"""The benchmark script keeps working: it runs on a tiny hospital and prints its table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_prints_queries_and_latency_for_every_hot_path():
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--rows", "5", "--repeat", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["request", "queries", "median", "ms", "p95", "ms"]
    rows = lines[2:]
    assert len(rows) == 8
    assert any(row.startswith("evaluate") for row in rows)
    assert all(row.split()[-3].isdigit() for row in rows)  # the query count of each request
