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


def test_load_benchmark_serves_every_case_and_prints_req_s_p50_p99_and_the_ratio():
    """`make bench` on the embedded defaults, one second per case: the table, every case answered with 2xx."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}}
    result = subprocess.run(
        [sys.executable, "scripts/benchmark.py", "--load", "--duration", "1", "--rounds", "1", "--connections", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("case")))
    assert lines[header].split() == ["case", "req/s", "p50", "ms", "p99", "ms", "vs", "bare", "non-2xx"]
    rows = lines[header + 1 :]
    assert [row[:32].strip() for row in rows] == [
        "patient, cached, admin",
        "patient, cached, viewer",
        "50 patient procedures, expand",
        "evaluate, 100 procedures",
        "bare Django view, same patient",
    ]
    for row in rows:
        rps, _p50, _p99, ratio, non_2xx = row[32:].split()
        assert float(rps) > 0 and ratio.endswith("x")
        assert non_2xx == "0"  # every request was answered as it should be (no 401, 404 or 500)
