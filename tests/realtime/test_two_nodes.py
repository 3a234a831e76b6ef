"""Two real nodes on one PostgreSQL database and one Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionclock.client import SessionSocket
from tests.helpers import CLIENT, COMPANION, ServerProcess, server_env
from tests.realtime.conftest import Node, RedisServer
from tests.realtime.test_socket import presence_where, snapshot_where

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


async def test_ready_through_one_node_reaches_socket_on_other(
    two_nodes: tuple[Node, Node],
) -> None:
    """A ready mark made through node B is pushed to a socket held on node A."""
    node_a, node_b = two_nodes
    node_a.create("s-1")
    socket = await SessionSocket.connect(node_a.url, "s-1", node_a.token(CLIENT))
    try:
        await socket.next_snapshot()
        await asyncio.to_thread(node_b.mark, "s-1", COMPANION)
        pushed = await socket.next_snapshot(timeout_s=5)
    finally:
        await socket.close()

    assert pushed["participants"]["companion"]["ready"] is True


async def test_racing_marks_on_both_nodes_make_one_ready_version(
    two_nodes: tuple[Node, Node],
) -> None:
    """50 racing marks through both nodes: one `ready` version, seen alike by both."""
    node_a, node_b = two_nodes
    node_a.create("s-1")
    tokens = {CLIENT: node_a.token(CLIENT), COMPANION: node_b.token(COMPANION)}
    watch_a = await SessionSocket.connect(node_a.url, "s-1", tokens[CLIENT])
    watch_b = await SessionSocket.connect(node_b.url, "s-1", tokens[COMPANION])
    try:
        await watch_a.next_snapshot()
        await watch_b.next_snapshot()

        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(
                *(
                    http.post(
                        f"{(node_a, node_b)[i % 2].url}/api/sessions/s-1/ready",
                        json={"ready": True},
                        headers={"Authorization": f"Bearer {tokens[user]}"},
                    )
                    for i in range(50)
                    for user in [(CLIENT, COMPANION)[(i // 2) % 2]]
                )
            )
        assert {answer.status_code for answer in answers} == {200}

        ready_a = await snapshot_where(watch_a, lambda s: s["status"] == "ready")
        ready_b = await snapshot_where(watch_b, lambda s: s["status"] == "ready")
    finally:
        await watch_a.close()
        await watch_b.close()

    assert ready_a["version"] == ready_b["version"] == 3
    assert node_a.snapshot("s-1")["version"] == 3


async def test_presence_crosses_nodes(two_nodes: tuple[Node, Node]) -> None:
    """A participant connected to node B shows as online on node A."""
    node_a, node_b = two_nodes
    node_a.create("s-1")
    client = await SessionSocket.connect(node_a.url, "s-1", node_a.token(CLIENT))
    try:
        await client.next_snapshot()
        companion = await SessionSocket.connect(
            node_b.url, "s-1", node_b.token(COMPANION)
        )
        await presence_where(client, {"client": True, "companion": True})
        await companion.close()
        await presence_where(client, {"client": True, "companion": False})
    finally:
        await client.close()


async def test_clients_converge_when_redis_stops_and_starts(
    postgres_url: str, own_redis: RedisServer, tmp_path: Path
) -> None:
    """With Redis down, news still arrives (from the database); back up, at once."""
    env = server_env(postgres_url, own_redis.url)
    node_a = Node(ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": "a"}, tmp_path))
    node_b = Node(ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": "b"}, tmp_path))
    node_a.server.start()
    node_b.server.start()
    socket: SessionSocket | None = None
    try:
        node_a.create("s-1", booking_status="pending")
        socket = await SessionSocket.connect(node_a.url, "s-1", node_a.token(CLIENT))
        await socket.next_snapshot()

        own_redis.stop()
        # Node B cannot publish; node A's next sync reads the change from the database.
        await asyncio.to_thread(node_b.mark, "s-1", COMPANION)
        during = await socket.next_snapshot(timeout_s=10)
        assert during["participants"]["companion"]["ready"] is True
        assert during["booking_status"] == "confirmed"

        own_redis.start()
        await _until_subscribed(node_a, node_b)
        await asyncio.to_thread(node_b.mark, "s-1", CLIENT)
        after = await socket.next_snapshot(timeout_s=10)
        assert after["status"] == "ready"
        assert _state(after) == _state(node_b.snapshot("s-1"))

        # Redis came back empty; node A wrote its connections there again.
        client = node_b.snapshot("s-1")["participants"]
        assert isinstance(client, dict)
        assert client["client"]["online"] is True
    finally:
        if socket is not None:
            await socket.close()
        node_b.server.stop()
        node_a.server.stop()


async def _until_subscribed(*nodes: Node) -> None:
    """Wait until every node is ready again: Redis answers and the bus listens."""
    for node in nodes:
        for _ in range(100):
            answer = await asyncio.to_thread(httpx.get, f"{node.url}/readyz")
            if answer.status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{node.url} did not resubscribe")


def _state(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without what is not the database's: time stamps and presence."""
    state = {k: v for k, v in snapshot.items() if not k.startswith("server_time")}
    state["participants"] = {
        role: {k: v for k, v in fields.items() if k != "online"}
        for role, fields in snapshot["participants"].items()
    }
    return state
