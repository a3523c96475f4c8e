"""A private redis-server for fault tests: started on a free loopback port in a temporary directory, then
stopped, frozen (SIGSTOP), thawed and restarted from its own dump by the test. Only this process is ever
signalled, by its PID; the machine's shared Redis is never touched."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from conftest import services_required


def redis_server_binary() -> str:
    """The redis-server binary; skip (or fail with CLINREC_REQUIRE_SERVICES=1) when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if services_required():
            pytest.fail(f"{message}, and CLINREC_REQUIRE_SERVICES=1 requires it.")
        pytest.skip(f"{message}; set CLINREC_REQUIRE_SERVICES=1 to make this a failure.")
    return binary


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """One redis-server process owned by a test."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> None:
        """Start (or restart): a restarted server loads the dump of its last SAVE, as after a crash or failover."""
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--dbfilename", "dump.rdb",
                "--save", "",  # snapshots only when the test says SAVE
                "--appendonly", "no",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def save_and_stop(self) -> None:
        """SAVE, then SIGTERM: the next start comes back with exactly the data saved now."""
        self.client().save()
        self.stop()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a frozen server could not act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers (a hung server)."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def keyspace_hits(self) -> int:
        return int(self.client().info("stats")["keyspace_hits"])

    def key_names(self, pattern: str = "*") -> list[str]:
        return [key.decode() for key in self.client().keys(pattern)]
