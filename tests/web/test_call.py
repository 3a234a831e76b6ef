"""The built-in call between two real browsers, with Chromium's fake camera."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import ServerProcess, server_env
from tests.web.conftest import (
    LiveServer,
    Participants,
    all_text,
    serious_violations,
)

pytestmark = pytest.mark.slow

MEDIA_WITHIN_S = 25.0

# The bytes of the other's video received so far, read from the page's own
# RTCPeerConnection; -1 while there is none.
INBOUND_VIDEO_BYTES = """async () => {
  const pc = document.querySelector("session-lobby")?.call?.peer?.pc;
  if (!pc) return -1;
  let bytes = 0;
  for (const report of (await pc.getStats()).values()) {
    if (report.type === "inbound-rtp" && report.kind === "video") {
      bytes += report.bytesReceived ?? 0;
    }
  }
  return bytes;
}"""

# Keep hold of the call's connection and tracks, to look at them after the end.
KEEP_CALL = """() => {
  const peer = document.querySelector("session-lobby").call.peer;
  globalThis.__call = { pc: peer.pc, tracks: peer.localStream.getTracks() };
}"""

# What the page's call looks like, for a failure's message.
CALL_STATE = """() => {
  const lobby = document.querySelector("session-lobby");
  const peer = lobby?.call?.peer;
  return {
    status: lobby?.snapshot?.status,
    transport: lobby?.client?.transport,
    call: Boolean(lobby?.call),
    access: lobby?.call?.access?.provider ?? null,
    peer: peer && { id: peer.peerId, other: peer._otherPeerId, state: peer.state },
  };
}"""

CALL_CLOSED = """() => ({
  pc: globalThis.__call.pc.connectionState,
  tracks: globalThis.__call.tracks.map((track) => track.readyState),
  call: document.querySelector("session-lobby").call,
  videos: document.querySelector("session-lobby").shadowRoot
    .querySelectorAll("video").length,
})"""


@pytest.fixture
def two_live_servers(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two nodes on one PostgreSQL and one Redis, each serving one participant."""
    env = server_env(postgres_url, redis_url, SESSIONCLOCK_SWEEP_INTERVAL_S="1")
    first = ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": "web-a"}, tmp_path)
    second = ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": "web-b"}, tmp_path)
    first.start()
    try:
        second.start()
        try:
            yield LiveServer(first), LiveServer(second)
        finally:
            second.stop()
    finally:
        first.stop()


def _video_flows(
    page: Page, seen: Participants, timeout_s: float = MEDIA_WITHIN_S
) -> int:
    """Wait until the other's video arrives and keeps arriving; the bytes so far."""
    deadline = time.monotonic() + timeout_s
    first = -1
    while time.monotonic() < deadline:
        received = int(page.evaluate(INBOUND_VIDEO_BYTES))
        if first <= 0 < received:
            first = received
        elif first > 0 and received > first:
            return received
        page.wait_for_timeout(300)
    state = page.evaluate(CALL_STATE)
    trace = "\n".join(line for line in seen.console if "call." in line)
    raise AssertionError(
        f"no video arrived within {timeout_s} s: {first} bytes, {state}\n{trace}"
    )


def _open(
    participants: Participants,
    server: LiveServer,
    session: dict[str, Any],
    role: str,
) -> Page:
    """A participant's session page, its call kept on loopback, its log on."""
    link = server.link(session, role) + "&debug=1"
    return participants.open(link, loopback_only=True)


def _in_call(
    server: LiveServer, participants: Participants, session_id: str, duration_s: int
) -> tuple[Page, Page]:
    """A session starting now, both participants on its page, both ready."""
    session = server.create_session(session_id, starts_in_s=1, duration_s=duration_s)
    client = _open(participants, server, session, "client")
    companion = _open(participants, server, session, "companion")
    _both_ready(client, companion)
    return client, companion


def _both_ready(client: Page, companion: Page) -> None:
    client.get_by_role("button", name="I'm ready").click()
    companion.get_by_role("button", name="I'm ready").click()
    for page in (client, companion):
        expect(page.get_by_role("heading", name="The call is open")).to_be_visible()


def test_each_sees_the_other_across_nodes_and_a_reload_brings_the_call_back(
    two_live_servers: tuple[LiveServer, LiveServer], participants: Participants
) -> None:
    """Signalled across two nodes, each browser receives the other's video, and
    after one reloads the call comes back for both, as the ledger records."""
    node_a, node_b = two_live_servers
    # Redis channels are shared by every run on this machine: an id of its own.
    session_id = f"call-both-{uuid.uuid4().hex[:8]}"
    session = node_a.create_session(session_id, starts_in_s=2, duration_s=300)
    client = _open(participants, node_a, session, "client")
    companion = _open(participants, node_b, session, "companion")
    _both_ready(client, companion)

    _video_flows(client, participants)
    _video_flows(companion, participants)
    expect(client.locator("session-lobby video.remote")).to_be_visible()
    expect(client.get_by_role("button", name="Mute")).to_be_visible()
    expect(client.get_by_role("button", name="Hang up")).to_be_visible()

    client.reload()
    expect(client.get_by_role("heading", name="The call is open")).to_be_visible()
    _video_flows(client, participants)
    _video_flows(companion, participants)

    ledger = node_b.api("GET", f"/api/sessions/{session_id}/attendance").json()
    assert ledger["call_started_at"] is not None
    assert ledger["participants"]["client"]["joins"] == 2
    assert ledger["participants"]["client"]["reconnects"] == 1
    assert ledger["participants"]["companion"]["joins"] == 1
    events = [(e["role"], e["event"]) for e in ledger["events"]]
    assert ("client", "left") in events
    assert ("companion", "media_connected") in events
    assert {e["node"] for e in ledger["events"]} == {"web-a", "web-b"}
    assert not participants.errors


def test_the_call_ends_for_both_at_ends_at(
    live_server: LiveServer, participants: Participants
) -> None:
    """At ends_at both connections close, the tracks stop, and the ending shows."""
    client, companion = _in_call(live_server, participants, "call-ends", 20)
    _video_flows(client, participants)
    for page in (client, companion):
        page.evaluate(KEEP_CALL)

    for page in (client, companion):
        expect(page.get_by_role("heading", name="The session has ended")).to_be_visible(
            timeout=30_000
        )
        closed = page.evaluate(CALL_CLOSED)
        assert closed["pc"] == "closed"
        assert closed["tracks"]
        assert set(closed["tracks"]) == {"ended"}
        assert closed["call"] is None
        assert closed["videos"] == 0
    assert not participants.errors


def test_hang_up_and_rejoin(
    live_server: LiveServer, participants: Participants
) -> None:
    """Hanging up leaves the call until the participant rejoins it."""
    client, companion = _in_call(live_server, participants, "call-rejoin", 300)
    _video_flows(companion, participants)

    client.get_by_role("button", name="Hang up").click()
    expect(client.get_by_text("You left the call.")).to_be_visible()
    expect(
        companion.get_by_text("Waiting for the other participant to join the call.")
    ).to_be_visible(timeout=5000)

    client.get_by_role("button", name="Rejoin the call").click()
    _video_flows(companion, participants)
    _video_flows(client, participants)
    assert not participants.errors


def test_the_call_passes_an_accessibility_scan_in_both_languages(
    live_server: LiveServer, participants: Participants
) -> None:
    """The call's page has no serious axe finding and no missing string, in
    English and in Spanish."""
    session = live_server.create_session("call-a11y", starts_in_s=1, duration_s=300)
    client = _open(participants, live_server, session, "client")
    link = live_server.link(session, "companion") + "&debug=1"
    companion = participants.open(link, locale="es-ES", loopback_only=True)
    client.get_by_role("button", name="I'm ready").click()
    companion.get_by_role("button", name="Estoy listo").click()
    _video_flows(client, participants)
    _video_flows(companion, participants)

    expect(companion.get_by_role("button", name="Colgar")).to_be_visible()
    expect(companion.get_by_role("button", name="Silenciar")).to_be_visible()
    for page in (client, companion):
        assert serious_violations(page) == []
        assert "⟦" not in all_text(page)
    assert not participants.errors
