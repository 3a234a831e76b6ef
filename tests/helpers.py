"""Shared test values and tools: bookings, times, and real server processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from sessionclock.core.clock import to_iso

SECRET_KEY = "test-secret-key-" + "s" * 32
API_KEY = "test-platform-key-" + "k" * 32
CRON_TOKEN = "test-cron-token-" + "c" * 32

# 2026-12-03T18:00:00.000Z: every manual clock starts here.
T0_MS = 1_796_320_800_000
MINUTE_MS = 60_000

CLIENT = "u-client"
COMPANION = "u-companion"
STRANGER = "u-stranger"


def booking(
    starts_in_ms: int = 10 * MINUTE_MS,
    duration_s: int = 1800,
    *,
    now_ms: int = T0_MS,
    **extra: Any,
) -> dict[str, Any]:
    """A create body for a session between CLIENT and COMPANION."""
    body: dict[str, Any] = {
        "client_id": CLIENT,
        "companion_id": COMPANION,
        "starts_at": to_iso(now_ms + starts_in_ms),
        "duration_s": duration_s,
    }
    body.update(extra)
    return body


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """`sessionclock serve` in a child process on a free port."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._env = env
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"server-{self.port}.log"

    def start(self, timeout_s: float = 30) -> None:
        env = {**os.environ, **self._env}
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "sessionclock", "serve", "--port", str(self.port)],
            cwd=self._workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(sig)
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._log.close()

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(env: dict[str, str], workdir: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(env, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def server_env(
    database_url: str, redis_url: str | None = None, **extra: str
) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "SESSIONCLOCK_SECRET_KEY": SECRET_KEY,
        "SESSIONCLOCK_API_KEY": API_KEY,
        "CRON_SECRET_TOKEN": CRON_TOKEN,
        "SESSIONCLOCK_ENV": "production",
        "SESSIONCLOCK_LOG_LEVEL": "info",
    }
    env["REDIS_URL"] = redis_url or ""
    env.update(extra)
    return env
