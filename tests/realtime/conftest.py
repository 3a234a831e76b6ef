"""Real-time fixtures: server processes and the calls a platform makes to them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionclock.core.clock import SystemClock
from tests.conftest import unavailable
from tests.helpers import (
    API_KEY,
    ServerProcess,
    booking,
    free_port,
    server_env,
)

PLATFORM = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Node:
    """A running server and the platform's view of it."""

    server: ServerProcess

    @property
    def url(self) -> str:
        return self.server.base_url

    def token(self, user_id: str) -> str:
        response = httpx.post(
            f"{self.url}/api/tokens", json={"user_id": user_id}, headers=PLATFORM
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def create(
        self,
        session_id: str,
        starts_in_ms: int = 60_000,
        duration_s: int = 1800,
        **extra: Any,
    ) -> None:
        """Book CLIENT and COMPANION; by default the lobby is open already."""
        body = booking(
            starts_in_ms, duration_s, now_ms=SystemClock().now_ms(), id=session_id
        )
        body.update(extra)
        response = httpx.post(f"{self.url}/api/sessions", json=body, headers=PLATFORM)
        assert response.status_code == 201, response.text

    def mark(self, session_id: str, user_id: str, ready: bool = True) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/api/sessions/{session_id}/ready",
            json={"ready": ready},
            headers={"Authorization": f"Bearer {self.token(user_id)}"},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def snapshot(self, session_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/api/sessions/{session_id}", headers=PLATFORM)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def node(sqlite_url: str, tmp_path: Path) -> Iterator[Node]:
    """One node on SQLite, without Redis."""
    server = ServerProcess(server_env(sqlite_url), tmp_path)
    server.start()
    yield Node(server)
    server.stop()


@pytest.fixture
def two_nodes(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Node, Node]]:
    """Two nodes on one PostgreSQL database and one Redis."""
    env = server_env(postgres_url, redis_url)
    first = ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": "node-a"}, tmp_path)
    second = ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": "node-b"}, tmp_path)
    first.start()
    try:
        second.start()
        try:
            yield Node(first), Node(second)
        finally:
            second.stop()
    finally:
        first.stop()


class RedisServer:
    """A redis-server of the test's own, on a free port, that a test may stop."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            probe = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis that this test alone uses, so that it can stop and start it."""
    try:
        server = RedisServer(tmp_path)
        server.start()
    except (OSError, RuntimeError) as error:
        unavailable("redis-server (the binary)", error)
    yield server
    server.stop()
