"""Real `sessionclock serve` processes on free ports, on the real clock."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from sessionclock.core.clock import SystemClock, to_epoch_ms
from tests.conftest import Backend
from tests.helpers import (
    API_KEY,
    CLIENT,
    COMPANION,
    ServerProcess,
    booking,
    running_server,
    server_env,
)

pytestmark = pytest.mark.slow

PLATFORM = {"Authorization": f"Bearer {API_KEY}"}


def _token(base_url: str, user_id: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/api/tokens", json={"user_id": user_id}, headers=PLATFORM
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_restart_keeps_status_marks_and_timing(
    backend: Backend, tmp_path: Path, sig: int
) -> None:
    """A stopped or killed server comes back with the same snapshot it had."""
    env = server_env(backend.database_url, backend.redis_url)
    server = ServerProcess(env, tmp_path)
    server.start()
    try:
        now_ms = SystemClock().now_ms()
        body = booking(starts_in_ms=60_000, duration_s=600, now_ms=now_ms, id="r-1")
        body["lobby_lead_s"] = 120
        created = httpx.post(
            f"{server.base_url}/api/sessions", json=body, headers=PLATFORM
        )
        assert created.status_code == 201, created.text
        client = _token(server.base_url, CLIENT)
        marked = httpx.post(
            f"{server.base_url}/api/sessions/r-1/ready",
            json={"ready": True},
            headers=client,
        )
        assert marked.status_code == 200, marked.text
        before = marked.json()
    finally:
        server.stop(sig)

    server.start()
    try:
        after = httpx.get(
            f"{server.base_url}/api/sessions/r-1/ready", headers=client
        ).json()
    finally:
        server.stop()

    for key in ("server_time", "server_time_ms"):
        before.pop(key)
        after.pop(key)
    assert after == before


def test_expiry_fires_on_time_with_real_clock(backend: Backend, tmp_path: Path) -> None:
    """Sessions whose end comes while the server runs expire close to `ends_at`.

    The lateness (ended_at - ends_at, stamped at the database write) is printed for
    the record; the assertion is generous because the machine may be busy.
    """
    env = server_env(backend.database_url, backend.redis_url)
    with running_server(env, tmp_path) as server:
        now_ms = SystemClock().now_ms()
        ids = [f"e-{index}" for index in range(20)]
        for session_id in ids:
            body = booking(
                starts_in_ms=-1000, duration_s=3, now_ms=now_ms, id=session_id
            )
            body["lobby_lead_s"] = 0
            response = httpx.post(
                f"{server.base_url}/api/sessions", json=body, headers=PLATFORM
            )
            assert response.status_code == 201, response.text

        time.sleep(3.5)
        lateness_ms = []
        for session_id in ids:
            snapshot = httpx.get(
                f"{server.base_url}/api/sessions/{session_id}", headers=PLATFORM
            ).json()
            assert snapshot["status"] == "expired"
            ended = _ms(snapshot["ended_at"])
            lateness_ms.append(ended - _ms(snapshot["ends_at"]))

    print(
        f"\nexpiry lateness on {backend.name}: "
        f"p50={statistics.median(lateness_ms):.0f} ms max={max(lateness_ms)} ms"
    )
    assert all(0 <= late < 2000 for late in lateness_ms), lateness_ms


@pytest.mark.postgres
def test_ready_race_across_two_nodes_makes_one_transition(
    postgres_url: str, tmp_path: Path
) -> None:
    """50 concurrent ready calls through two nodes on one database: one `ready`."""
    env = server_env(postgres_url)
    with (
        running_server(env, tmp_path) as node_a,
        running_server(env, tmp_path) as node_b,
    ):
        now_ms = SystemClock().now_ms()
        body = booking(starts_in_ms=60_000, now_ms=now_ms, id="race-1")
        created = httpx.post(
            f"{node_a.base_url}/api/sessions", json=body, headers=PLATFORM
        )
        assert created.status_code == 201, created.text
        headers = [_token(node_a.base_url, CLIENT), _token(node_b.base_url, COMPANION)]

        nodes = (node_a.base_url, node_b.base_url)

        async def mark_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            f"{nodes[i % 2]}/api/sessions/race-1/ready",
                            json={"ready": True},
                            headers=headers[(i // 2) % 2],
                        )
                        for i in range(50)
                    )
                )

        responses = asyncio.run(mark_all())
        assert [r.status_code for r in responses] == [200] * 50
        final = httpx.get(f"{node_b.base_url}/api/sessions/race-1", headers=PLATFORM)

    assert final.json()["status"] == "ready"
    # Created with its lobby open (1), then one version per participant's mark.
    assert final.json()["version"] == 3
    # One event row per version, named by its last event.
    assert asyncio.run(_event_types(postgres_url, "race-1")) == [
        "lobby_opened",
        "participant_ready",
        "ready",
    ]


async def _event_types(database_url: str, session_id: str) -> list[str]:
    connection = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await connection.fetch(
            "SELECT type FROM session_events WHERE session_id = $1 ORDER BY id",
            session_id,
        )
    finally:
        await connection.close()
    return [row["type"] for row in rows]


def _ms(iso: str) -> int:
    return to_epoch_ms(datetime.fromisoformat(iso))
