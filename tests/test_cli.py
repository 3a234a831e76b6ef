"""The `sessionclock` command as an operator types it, in a clean working folder."""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from sessionclock import cli
from sessionclock.core.clock import SystemClock, to_epoch_ms
from sessionclock.runtime import Runtime
from tests.conftest import make_settings
from tests.helpers import free_port


def _run(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONCLOCK_")}
    clean.pop("DATABASE_URL", None)
    clean.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "sessionclock", *args],
        cwd=workdir,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_creates_default_sqlite_file(tmp_path: Path) -> None:
    """`migrate` makes the embedded database in the working folder."""
    result = _run(tmp_path, "migrate")

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sessionclock.db").exists()


def test_development_secrets_survive_restarts(tmp_path: Path) -> None:
    """Tokens made in development stay valid after the next start: secrets are kept."""
    _run(tmp_path, "migrate")
    secrets_file = tmp_path / ".sessionclock-secrets.json"

    first = json.loads(secrets_file.read_text())
    _run(tmp_path, "migrate")

    assert json.loads(secrets_file.read_text()) == first
    assert secrets_file.stat().st_mode & 0o077 == 0


def test_session_create_token_and_cleanup(tmp_path: Path) -> None:
    """An operator creates a session, gets a token for it and runs cleanup."""
    created = _run(
        tmp_path,
        "session",
        "create",
        "--id",
        "cli-1",
        "--client",
        "u-1",
        "--companion",
        "u-2",
        "--starts-in-s",
        "600",
        "--duration-s",
        "900",
        "--pending",
    )
    assert created.returncode == 0, created.stderr
    snapshot = json.loads(created.stdout)
    assert snapshot["id"] == "cli-1"
    assert snapshot["booking_status"] == "pending"
    assert snapshot["status"] == "scheduled"

    token = _run(tmp_path, "token", "u-1", "--ttl-s", "60")
    assert token.returncode == 0, token.stderr
    assert token.stdout.count(".") == 2

    cleanup = _run(tmp_path, "cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert set(json.loads(cleanup.stdout)) == {"expired", "purged", "ran_at"}


def test_production_without_secrets_refuses_to_start(tmp_path: Path) -> None:
    """In production a missing secret stops the start with a message naming it."""
    result = _run(tmp_path, "serve", SESSIONCLOCK_ENV="production")

    assert result.returncode == 2
    assert "SESSIONCLOCK_SECRET_KEY" in result.stderr
    assert "SESSIONCLOCK_API_KEY" in result.stderr


@pytest.mark.slow
def test_demo_prints_working_links_and_serves(tmp_path: Path) -> None:
    """`demo` serves, and each printed link signs its participant in to the session."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONCLOCK_")}
    clean.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "sessionclock", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=clean,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        links: dict[str, str] = {}
        deadline = time.monotonic() + 30
        while len(links) < 2 and time.monotonic() < deadline:
            line = process.stdout.readline()
            match = re.match(r"\s+(client|companion)\s+(http\S+)", line)
            if match:
                links[match.group(1)] = match.group(2)
        assert set(links) == {"client", "companion"}

        snapshots = {role: _sign_in(link) for role, link in links.items()}
        assert snapshots["client"]["id"] == snapshots["companion"]["id"]
        assert snapshots["client"]["status"] == "scheduled"
        opens_in_ms = _ms_until(str(snapshots["client"]["lobby_opens_at"]))
        assert 0 < opens_in_ms <= 60_000
    finally:
        process.terminate()
        process.wait(timeout=15)
        if process.stdout is not None:
            process.stdout.close()


def _sign_in(link: str) -> dict[str, object]:
    """Open a sign-in link like a browser; return the session as that participant."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with httpx.Client(timeout=2, follow_redirects=True) as client:
                page = client.get(link)
                page.raise_for_status()
                assert "access_token" not in str(page.url)
                assert "<session-lobby" in page.text
                session_id = page.url.path.rsplit("/", 1)[1]
                response = client.get(
                    page.url.copy_with(path=f"/api/sessions/{session_id}", query=None)
                )
                response.raise_for_status()
                body: dict[str, object] = response.json()
                return body
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _ms_until(iso: str) -> int:
    return to_epoch_ms(datetime.fromisoformat(iso)) - SystemClock().now_ms()


def test_command_freezes_what_startup_loaded(tmp_path: Path) -> None:
    """A one-shot command works with what startup loaded out of the collector's way."""
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    frozen: list[int] = []

    async def work(_runtime: Runtime) -> None:
        frozen.append(gc.get_freeze_count())

    gc.unfreeze()
    try:
        cli._with_runtime(settings, work)
    finally:
        # The test process shares its collector: leave nothing frozen behind.
        gc.unfreeze()

    assert frozen
    assert frozen[0] > 0
