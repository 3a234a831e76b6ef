"""The session socket and event stream of one real server process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.exceptions import InvalidStatus

from sessionclock.client import SessionSocket
from sessionclock.core.clock import SystemClock, to_epoch_ms
from tests.helpers import CLIENT, COMPANION, STRANGER, ServerProcess, server_env
from tests.realtime.conftest import PLATFORM, Node

pytestmark = pytest.mark.slow


async def _connect(node: Node, user_id: str, session_id: str = "s-1") -> SessionSocket:
    return await SessionSocket.connect(node.url, session_id, node.token(user_id))


async def test_socket_pushes_snapshot_on_connect_and_after_each_change(
    node: Node,
) -> None:
    """A socket gets the snapshot at once, then every change, whoever made it."""
    node.create("s-1")
    client = await _connect(node, CLIENT)
    companion = await _connect(node, COMPANION)
    try:
        first = await client.next_snapshot()
        assert first["status"] == "waiting"
        assert first["participants"]["client"]["online"] is True

        await companion.mark_ready()
        seen = await client.next_snapshot()
        assert seen["participants"]["companion"]["ready"] is True

        node.mark("s-1", CLIENT)
        both = await snapshot_where(companion, lambda s: s["status"] == "ready")
        assert both["version"] > seen["version"]
    finally:
        await client.close()
        await companion.close()


@pytest.mark.parametrize(
    ("who", "origin", "status"),
    [
        ("bad-token", None, 401),
        (STRANGER, None, 404),
        (CLIENT, "http://elsewhere.example", 403),
    ],
)
async def test_socket_refuses_before_sending_anything(
    node: Node, who: str, origin: str | None, status: int
) -> None:
    """A bad token, a stranger or a foreign page is refused at the handshake."""
    node.create("s-1")
    token = "not-a-token" if who == "bad-token" else node.token(who)

    with pytest.raises(InvalidStatus) as refused:
        await SessionSocket.connect(node.url, "s-1", token, origin=origin)

    assert refused.value.response.status_code == status
    assert b"u-client" not in (refused.value.response.body or b"")


async def test_socket_accepts_page_of_same_host(node: Node) -> None:
    """A page served by this very host may open the socket."""
    node.create("s-1")
    origin = node.url

    socket = await SessionSocket.connect(
        node.url, "s-1", node.token(CLIENT), origin=origin
    )
    try:
        assert (await socket.next_snapshot())["id"] == "s-1"
    finally:
        await socket.close()


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "JSON object"),
        ("[1, 2]", "JSON object"),
        ('{"type": "dance"}', "one of ready, time"),
        ('{"type": "ready", "ready": "yes"}', "true or false"),
        ('{"type": "time", "t0": "soon"}', "milliseconds"),
    ],
)
async def test_bad_frame_gets_error_and_changes_nothing(
    node: Node, raw: str, says: str
) -> None:
    """A bad frame is answered with an error that says what was expected."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    try:
        before = await socket.next_snapshot()
        await socket.send_raw(raw)
        error = await _next_of(socket, "error")
    finally:
        await socket.close()

    assert error["status"] == 422
    assert says in error["detail"]
    after = node.snapshot("s-1")
    assert after["version"] == before["version"]


async def test_ready_before_lobby_gets_conflict_error(node: Node) -> None:
    """A ready mark before the lobby opens is answered with a 409 error frame."""
    node.create("s-1", starts_in_ms=3_600_000)
    socket = await _connect(node, CLIENT)
    try:
        await socket.next_snapshot()
        await socket.mark_ready()
        error = await _next_of(socket, "error")
    finally:
        await socket.close()

    assert error["status"] == 409
    assert "lobby opens" in error["detail"]


async def test_too_big_frame_closes_with_1009(node: Node) -> None:
    """A frame over the size limit closes the socket with 1009, the server stays."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    await socket.next_snapshot()

    await socket.send_raw(json.dumps({"type": "time", "t0": 1, "pad": "x" * 70_000}))
    await asyncio.wait_for(socket.closed.wait(), 10)

    assert socket.close_code == 1009
    assert node.snapshot("s-1")["version"] == 1


async def test_flood_closes_with_4429(node: Node) -> None:
    """A client that sends far too many frames is closed with 4429."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    await socket.next_snapshot()

    for _ in range(200):
        if socket.closed.is_set():
            break
        await socket.send({"type": "time", "t0": 1})
    await asyncio.wait_for(socket.closed.wait(), 10)

    assert socket.close_code == 4429


async def test_many_bad_frames_close_with_4400(node: Node) -> None:
    """Ten bad frames in a row close the socket with 4400."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    await socket.next_snapshot()

    for _ in range(10):
        await socket.send_raw("?")
        await asyncio.sleep(0.12)
    await asyncio.wait_for(socket.closed.wait(), 10)

    assert socket.close_code == 4400
    assert node.snapshot("s-1")["version"] == 1


async def test_reconnect_gets_current_snapshot_at_once(node: Node) -> None:
    """A client that comes back gets what changed while it was away, first thing."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    await socket.next_snapshot()
    await socket.close()

    node.mark("s-1", COMPANION)
    again = await _connect(node, CLIENT)
    try:
        snapshot = await again.next_snapshot()
    finally:
        await again.close()

    assert snapshot["participants"]["companion"]["ready"] is True


async def test_presence_follows_connections(node: Node) -> None:
    """Each side sees whether the other holds a connection right now."""
    node.create("s-1")
    companion = await _connect(node, COMPANION)
    try:
        await companion.next_snapshot()
        client = await _connect(node, CLIENT)
        try:
            await presence_where(companion, {"client": True, "companion": True})
            assert node.snapshot("s-1")["participants"]["client"]["online"] is True
        finally:
            await client.close()
        await presence_where(companion, {"client": False, "companion": True})
    finally:
        await companion.close()


async def test_time_exchange_agrees_with_server_clock(node: Node) -> None:
    """Time exchanges on one machine put the client within a few ms of the server."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    try:
        offset_ms = await socket.sync_clock(exchanges=5)
        assert socket.estimator.round_trip_ms is not None
    finally:
        await socket.close()

    assert abs(offset_ms) < 50


async def test_event_stream_sends_snapshot_then_changes(node: Node) -> None:
    """The event stream starts with the snapshot and carries every change after."""
    node.create("s-1")
    token = node.token(CLIENT)
    url = f"{node.url}/api/sessions/s-1/events?access_token={token}"
    events: list[tuple[str, dict[str, Any]]] = []

    async with (
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", url) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((kind, json.loads(line.removeprefix("data: "))))
                if kind == "snapshot" and len(events) == 1:
                    await asyncio.to_thread(node.mark, "s-1", COMPANION)
                if kind == "snapshot" and len(events) > 1:
                    break

    snapshots = [data["session"] for kind, data in events if kind == "snapshot"]
    assert snapshots[0]["version"] == 1
    assert snapshots[-1]["participants"]["companion"]["ready"] is True


def test_event_stream_refuses_stranger(node: Node) -> None:
    """A stranger's event stream is a 404 with no data."""
    node.create("s-1")
    token = node.token(STRANGER)

    response = httpx.get(f"{node.url}/api/sessions/s-1/events?access_token={token}")

    assert response.status_code == 404
    assert CLIENT not in response.text


async def snapshot_where(
    socket: SessionSocket, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first snapshot from now on that satisfies `wanted`."""
    while True:
        snapshot = await socket.next_snapshot()
        if wanted(snapshot):
            return snapshot


async def presence_where(socket: SessionSocket, online: dict[str, bool]) -> None:
    """Wait for a presence frame that says exactly who is `online`."""
    while (await _next_of(socket, "presence"))["online"] != online:
        pass


async def _next_of(socket: SessionSocket, kind: str) -> dict[str, Any]:
    while True:
        received = await socket.next_frame()
        if received["type"] == kind:
            return received


async def test_warning_and_end_are_pushed_on_time(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A warning frame arrives at its threshold and the expired snapshot at ends_at.

    The lateness of the expired snapshot at the client (from ends_at, on one
    machine's clock) is printed for the record; the bound is generous.
    """
    env = server_env(sqlite_url, SESSIONCLOCK_WARNINGS_S="2")
    server = ServerProcess(env, tmp_path)
    server.start()
    node = Node(server)
    try:
        node.create("s-1", starts_in_ms=-1000, duration_s=4)
        socket = await SessionSocket.connect(node.url, "s-1", node.token(CLIENT))
        node.mark("s-1", COMPANION)
        await socket.mark_ready()
        warning = await _next_of(socket, "warning")
        ended = await snapshot_where(socket, lambda s: s["status"] == "expired")
        arrived_ms = SystemClock().now_ms()
        await socket.close()
    finally:
        server.stop()

    assert warning["remaining_s"] == 2
    assert ended["expired_reason"] == "time_up"
    ends_at_ms = to_epoch_ms(datetime.fromisoformat(ended["ends_at"]))
    print(
        f"\nexpired snapshot at the client {arrived_ms - ends_at_ms} ms after ends_at"
    )
    assert 0 <= arrived_ms - ends_at_ms < 2000


async def test_tokens_never_reach_the_log(node: Node) -> None:
    """Handshake lines carry the address; its access_token is redacted."""
    node.create("s-1")
    token = node.token(CLIENT)
    socket = await SessionSocket.connect(node.url, "s-1", token)
    await socket.next_snapshot()
    await socket.close()

    log = node.server.log()
    assert "access_token=[redacted]" in log
    assert token not in log


async def test_replaced_participant_socket_closes_with_4403(node: Node) -> None:
    """When the booking names another client, the old client's socket closes."""
    node.create("s-1")
    socket = await _connect(node, CLIENT)
    first = await socket.next_snapshot()

    body = {
        "client_id": "u-newcomer",
        "companion_id": COMPANION,
        "starts_at": first["starts_at"],
        "ends_at": first["ends_at"],
        "lobby_lead_s": first["lobby_lead_s"],
    }
    response = await asyncio.to_thread(
        httpx.put, f"{node.url}/api/sessions/s-1", json=body, headers=PLATFORM
    )
    assert response.status_code == 200, response.text
    await asyncio.wait_for(socket.closed.wait(), 10)

    assert socket.close_code == 4403


async def test_socket_meeting_a_dead_database_connection_is_refused_with_503(
    postgres_url: str, tmp_path: Path
) -> None:
    """A pooled connection that died with PostgreSQL costs one handshake a 503."""
    env = server_env(postgres_url, SESSIONCLOCK_DB_POOL_SIZE="1")
    server = ServerProcess(env, tmp_path)
    server.start()
    try:
        node = Node(server)
        node.create("s-1")
        token = node.token(CLIENT)
        database = postgres_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(postgres_url.replace("+asyncpg", "", 1))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        finally:
            await admin.close()

        with pytest.raises(InvalidStatus) as refused:
            await SessionSocket.connect(node.url, "s-1", token)
        assert refused.value.response.status_code == 503

        socket = await SessionSocket.connect(node.url, "s-1", token)
        try:
            assert (await socket.next_snapshot())["status"] == "waiting"
        finally:
            await socket.close()
    finally:
        server.stop()
