"""What the tool scripts (make bench, make fuzz) need to serve a ClinRec of their own: a free loopback port, a
database nobody else uses, and a wait until a started server answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse, urlunparse


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def throwaway_database(purpose: str) -> Iterator[str]:
    """A DATABASE_URL of the caller's own: with DATABASE_URL naming PostgreSQL, a database created beside it and
    dropped afterwards; else a SQLite file in a temporary folder."""
    configured = os.environ.get("DATABASE_URL", "").strip()
    if not configured.startswith(("postgres://", "postgresql://")):
        with tempfile.TemporaryDirectory(prefix=f"clinrec-{purpose}-") as folder:
            yield f"sqlite:///{folder}/{purpose}.sqlite3"
        return
    import psycopg

    parsed = urlparse(configured)
    name = f"clinrec_{purpose}_{os.getpid()}"
    admin_url = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(parsed._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Return once `url` answers (any HTTP status counts); exit if `process` dies or nothing answers in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (401, 404 or a degraded health count)
        except OSError:
            time.sleep(0.2)
    sys.exit(f"nothing answered {url} within {timeout:.0f} s")
