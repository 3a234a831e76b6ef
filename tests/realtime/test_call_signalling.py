"""The built-in call over real server processes: who may join, what is relayed."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from sessionclock.client import SessionSocket
from sessionclock.core.clock import SystemClock, to_epoch_ms
from tests.helpers import CLIENT, COMPANION, STRANGER, ServerProcess, server_env
from tests.realtime.conftest import PLATFORM, Node
from tests.realtime.test_socket import snapshot_where

pytestmark = pytest.mark.slow

TURN_SECRET = "test-turn-secret-" + "t" * 32
JWT_SECRET = "test-video-jwt-secret-" + "j" * 32
OFFER = {"description": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}}
CANDIDATE = {"candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}


def _serve(sqlite_url: str, tmp_path: Path, **extra: str) -> Iterator[Node]:
    server = ServerProcess(server_env(sqlite_url, **extra), tmp_path)
    server.start()
    try:
        yield Node(server)
    finally:
        server.stop()


@pytest.fixture
def turn_node(sqlite_url: str, tmp_path: Path) -> Iterator[Node]:
    """One node on SQLite whose built-in call hands out TURN credentials."""
    yield from _serve(
        sqlite_url,
        tmp_path,
        SESSIONCLOCK_ICE_SERVERS='[{"urls": "stun:127.0.0.1:3478"}]',
        SESSIONCLOCK_TURN_URLS="turn:127.0.0.1:3478?transport=udp",
        SESSIONCLOCK_TURN_SECRET=TURN_SECRET,
        SESSIONCLOCK_TURN_TTL_S="3600",
    )


@pytest.fixture
def url_node(sqlite_url: str, tmp_path: Path) -> Iterator[Node]:
    """One node whose calls happen on a platform's own video service."""
    yield from _serve(
        sqlite_url,
        tmp_path,
        SESSIONCLOCK_VIDEO_PROVIDER="url",
        SESSIONCLOCK_VIDEO_URL_TEMPLATE="https://meet.example.org/{room}?jwt={jwt}",
        SESSIONCLOCK_VIDEO_JWT_SECRET=JWT_SECRET,
        SESSIONCLOCK_VIDEO_JWT_APP_ID="platform-app",
    )


async def _both_in_call(
    node: Node, session_id: str, via: Node | None = None
) -> tuple[SessionSocket, SessionSocket]:
    """Both participants ready and joined; the companion's socket on `via`."""
    other_node = via or node
    client = await SessionSocket.connect(node.url, session_id, node.token(CLIENT))
    companion = await SessionSocket.connect(
        other_node.url, session_id, other_node.token(COMPANION)
    )
    node.mark(session_id, CLIENT)
    node.mark(session_id, COMPANION)
    for socket in (client, companion):
        await snapshot_where(socket, lambda s: s["status"] == "ready")
    await client.join_call("peer-client-1")
    await companion.join_call("peer-companion-1")
    joined = await client.next_of("call")
    assert joined == {
        "type": "call",
        "role": "companion",
        "action": "join",
        "peer_id": "peer-companion-1",
    }
    return client, companion


def _call(node: Node, session_id: str, user_id: str) -> httpx.Response:
    token = node.token(user_id)
    return httpx.get(
        f"{node.url}/api/sessions/{session_id}/call",
        headers={"Authorization": f"Bearer {token}"},
    )


def _attendance(node: Node, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{node.url}/api/sessions/s-1/attendance", headers=headers)


async def test_signal_is_relayed_to_the_other_participant_only(node: Node) -> None:
    """Once both joined, a description and a candidate reach the other as sent."""
    node.create("s-1")
    client, companion = await _both_in_call(node, "s-1")
    try:
        assert (await companion.next_of("call"))["role"] == "client"

        await client.signal(OFFER)
        await client.signal(CANDIDATE)
        first = await companion.next_of("signal")
        second = await companion.next_of("signal")

        assert first == {
            "type": "signal",
            "from": "client",
            "peer_id": "peer-client-1",
            "data": OFFER,
        }
        assert second["data"] == CANDIDATE
        with pytest.raises(TimeoutError):
            await client.next_of("signal", timeout_s=0.5)
    finally:
        await client.close()
        await companion.close()


async def test_no_signalling_before_both_are_ready(node: Node) -> None:
    """Joining or signalling in the lobby is refused with 409 and relays nothing."""
    node.create("s-1")
    client = await SessionSocket.connect(node.url, "s-1", node.token(CLIENT))
    companion = await SessionSocket.connect(node.url, "s-1", node.token(COMPANION))
    try:
        node.mark("s-1", CLIENT)
        await client.join_call("peer-1")
        refused = await client.next_of("error")
        assert refused["status"] == 409
        assert "both participants are ready" in refused["detail"]

        await client.signal(OFFER)
        assert (await client.next_of("error"))["status"] == 409
        with pytest.raises(TimeoutError):
            await companion.next_of("signal", timeout_s=0.5)
        assert _call(node, "s-1", CLIENT).status_code == 409
    finally:
        await client.close()
        await companion.close()


async def test_a_stranger_gets_no_call(node: Node) -> None:
    """A user who is not a participant gets 404 for the call and no socket."""
    node.create("s-1")
    node.mark("s-1", CLIENT)
    node.mark("s-1", COMPANION)

    response = _call(node, "s-1", STRANGER)

    assert response.status_code == 404
    assert CLIENT not in response.text


async def test_an_ended_session_gets_no_signalling(node: Node) -> None:
    """At ends_at the call closes: signals are refused and a late join too."""
    node.create("s-1", starts_in_ms=-1000, duration_s=4)
    client, companion = await _both_in_call(node, "s-1")
    try:
        ended = await snapshot_where(client, lambda s: s["status"] == "expired")
        assert ended["expired_reason"] == "time_up"

        await client.signal(OFFER)
        assert (await client.next_of("error"))["status"] == 409
        await companion.join_call("peer-companion-2")
        assert (await companion.next_of("error"))["status"] == 409
        with pytest.raises(TimeoutError):
            await companion.next_of("signal", timeout_s=0.5)
        assert _call(node, "s-1", CLIENT).status_code == 409
    finally:
        await client.close()
        await companion.close()

    late = await SessionSocket.connect(node.url, "s-1", node.token(CLIENT))
    try:
        await late.join_call("peer-client-2")
        assert (await late.next_of("error"))["status"] == 409
    finally:
        await late.close()


async def test_call_access_carries_turn_credentials_until_the_end(
    turn_node: Node,
) -> None:
    """The call endpoint gives coturn credentials that expire by ends_at."""
    turn_node.create("s-1", duration_s=900)
    turn_node.mark("s-1", CLIENT)
    turn_node.mark("s-1", COMPANION)

    body: dict[str, Any] = _call(turn_node, "s-1", COMPANION).json()

    assert body["provider"] == "builtin"
    assert body["role"] == "companion"
    assert body["polite"] is False
    stun, turn = body["ice_servers"]
    assert stun == {"urls": "stun:127.0.0.1:3478"}
    expires_at_s = int(turn["username"].split(":")[0])
    ends_at_ms = to_epoch_ms(datetime.fromisoformat(body["ends_at"]))
    assert expires_at_s <= ends_at_ms // 1000
    assert expires_at_s > SystemClock().now_ms() // 1000
    assert turn["username"] == f"{expires_at_s}:{COMPANION}"
    digest = hmac.new(TURN_SECRET.encode(), turn["username"].encode(), hashlib.sha1)
    assert turn["credential"] == base64.b64encode(digest.digest()).decode()
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]


async def test_url_provider_gives_each_participant_its_room_link(
    url_node: Node,
) -> None:
    """With the url provider, the call access is the room's link with a token
    valid from the start to the end, and no ICE servers."""
    url_node.create("s-1", duration_s=900)
    url_node.mark("s-1", CLIENT)
    url_node.mark("s-1", COMPANION)

    body: dict[str, Any] = _call(url_node, "s-1", CLIENT).json()

    assert body["provider"] == "url"
    assert body["ice_servers"] == []
    room, _, token = (
        body["url"].removeprefix("https://meet.example.org/").partition("?jwt=")
    )
    # Not valid yet: the session starts in a minute, and so does the room.
    with pytest.raises(jwt.ImmatureSignatureError):
        jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="jitsi")
    claims = jwt.decode(
        token,
        JWT_SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_nbf": False},
    )
    assert claims["room"] == room
    assert claims["iss"] == "platform-app"
    assert claims["context"]["user"]["id"] == CLIENT
    ends_at_ms = to_epoch_ms(datetime.fromisoformat(body["ends_at"]))
    assert claims["exp"] == ends_at_ms // 1000
    assert _call(url_node, "s-1", STRANGER).status_code == 404


async def test_attendance_records_joins_leaves_and_reconnects(node: Node) -> None:
    """The ledger shows each join and leave, a reconnect, and the call's start."""
    node.create("s-1")
    client, companion = await _both_in_call(node, "s-1")
    try:
        await client.send({"type": "call", "action": "media", "state": "connected"})
        await companion.close()
        left = await client.next_of("call")
        assert left["action"] == "leave"
        assert left["reason"] == "disconnected"

        again = await SessionSocket.connect(node.url, "s-1", node.token(COMPANION))
        try:
            await again.join_call("peer-companion-2")
            assert (await client.next_of("call"))["peer_id"] == "peer-companion-2"
            await client.leave_call()
            assert (await again.next_of("call"))["reason"] == "hung up"
        finally:
            await again.close()
    finally:
        await client.close()

    ledger = _attendance(node, PLATFORM)
    assert ledger.status_code == 200
    body = ledger.json()
    assert body["call_started_at"] is not None
    companion_account = body["participants"]["companion"]
    assert companion_account["joins"] == 2
    assert companion_account["reconnects"] == 1
    assert body["participants"]["client"]["joins"] == 1
    kinds = [(e["role"], e["event"]) for e in body["events"]]
    assert kinds.count(("companion", "joined")) == 2
    assert kinds.count(("companion", "left")) == 2
    assert ("client", "media_connected") in kinds
    assert ("client", "left") in kinds

    as_participant = _attendance(
        node, {"Authorization": f"Bearer {node.token(CLIENT)}"}
    )
    assert as_participant.status_code == 403


@pytest.mark.postgres
@pytest.mark.redis
async def test_signalling_crosses_nodes(two_nodes: tuple[Node, Node]) -> None:
    """A signal sent on node A reaches the other participant's socket on node B."""
    first, second = two_nodes
    first.create("s-1")
    client, companion = await _both_in_call(first, "s-1", via=second)
    try:
        await client.signal(OFFER)
        relayed = await companion.next_of("signal")
        assert relayed["from"] == "client"
        assert relayed["data"] == OFFER

        await companion.signal({"description": {"type": "answer", "sdp": "v=0"}})
        back = await client.next_of("signal")
        assert back["from"] == "companion"
        assert back["peer_id"] == "peer-companion-1"
    finally:
        await client.close()
        await companion.close()


async def test_bad_call_frames_get_clear_errors(node: Node) -> None:
    """A call frame without a valid action, peer id or data says what it expected."""
    node.create("s-1")
    socket = await SessionSocket.connect(node.url, "s-1", node.token(CLIENT))
    try:
        for fields, expected in (
            ({"type": "call", "action": "dance"}, "one of join, leave, media"),
            ({"type": "call", "action": "join", "peer_id": "a b"}, "peer_id"),
            ({"type": "call", "action": "media", "state": "meh"}, "connected, lost"),
            ({"type": "signal", "data": "offer"}, "a description or an ICE"),
        ):
            await socket.send(fields)
            error = await socket.next_of("error")
            assert error["status"] == 422, error
            assert expected in error["detail"]
        assert node.snapshot("s-1")["version"] == 1
    finally:
        await socket.close()
