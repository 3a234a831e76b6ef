"""The stage probe of `push_latency.py --stages`, in a real node on PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest
from bench.push_latency import STAGES_PROBE, read_stages

from sessionclock.core.clock import SystemClock
from tests.helpers import API_KEY, CLIENT, ServerProcess, booking, server_env

pytestmark = pytest.mark.slow

PLATFORM = {"Authorization": f"Bearer {API_KEY}"}


def test_marks_are_timed_at_every_stage_and_nothing_else_is(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "stages"
    env = server_env(
        postgres_url,
        redis_url,
        SESSIONCLOCK_NODE_NAME="a",
        SESSIONCLOCK_BENCH_STAGES=str(folder),
        PYTHONPATH=os.pathsep.join(
            [str(STAGES_PROBE), os.environ.get("PYTHONPATH", "")]
        ),
    )
    server = ServerProcess(env, tmp_path)
    server.start()
    try:
        base = server.base_url
        body = booking(starts_in_ms=60_000, now_ms=SystemClock().now_ms(), id="st-1")
        body["lobby_lead_s"] = 600
        # A creation writes and publishes too, outside any mark.
        created = httpx.post(f"{base}/api/sessions", json=body, headers=PLATFORM)
        assert created.status_code == 201, created.text
        token = httpx.post(
            f"{base}/api/tokens", json={"user_id": CLIENT}, headers=PLATFORM
        ).json()["token"]
        for ready in (True, False):
            marked = httpx.post(
                f"{base}/api/sessions/st-1/ready",
                json={"ready": ready},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert marked.status_code == 200, marked.text

        deadline_s = time.monotonic() + 10
        while not (folder / "a.json").exists() and time.monotonic() < deadline_s:
            time.sleep(0.2)
        time.sleep(1.2)  # one more write, after the mark for sure
        stages = read_stages(folder)
    finally:
        server.stop()

    found = stages["a"]
    assert isinstance(found, dict)
    expected = {
        "request",
        "service",
        "write",
        "write: statement",
        "write: driver",
        "announce",
        "announce: publish",
    }
    assert set(found) == expected, json.dumps(found)
    # Two marks, and not the creation's write or publication.
    for stage in ("request", "service", "write", "announce", "announce: publish"):
        assert found[stage]["n"] == 2, stage
    # The first mark reads the session before writing: nothing was known yet.
    assert found["write: statement"]["n"] >= 2
    assert found["write: driver"]["p50"] <= found["write"]["p50"]
    assert found["write"]["p50"] <= found["service"]["p50"]
    assert found["service"]["p50"] <= found["request"]["p50"]
