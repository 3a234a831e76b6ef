"""A connection's outbox and a socket's writer: order, a reader that falls behind,
and no task for an idle socket."""

from __future__ import annotations

import asyncio
from typing import cast

from starlette.websockets import WebSocket, WebSocketState

from sessionclock.constants import WS_OUTBOX_FRAMES
from sessionclock.core.session import Role
from sessionclock.http.routes.realtime import SocketWriter
from sessionclock.realtime.hub import CloseCode, Connection


def _drain(connection: Connection) -> list[str | None]:
    frames = []
    while not connection.outbox.empty():
        frames.append(connection.outbox.get_nowait())
    return frames


async def test_push_keeps_order_and_close_comes_last() -> None:
    """Frames leave in the order pushed, and a close follows what was queued."""
    connection = Connection("s-1", "u-1", Role.CLIENT, "websocket")

    connection.push("a")
    connection.push("b")
    connection.close(CloseCode.NORMAL)
    connection.push("c")

    assert _drain(connection) == ["a", "b", None]


async def test_reader_that_falls_behind_is_told_to_go() -> None:
    """A full outbox closes the connection with 4408 and still ends its writer."""
    connection = Connection("s-1", "u-1", Role.CLIENT, "sse")
    for index in range(WS_OUTBOX_FRAMES):
        connection.push(f"frame-{index}")

    connection.push("one too many")

    assert connection.close_code is CloseCode.TOO_SLOW
    frames = _drain(connection)
    assert frames[-1] is None
    assert "one too many" not in frames


class _FakeSocket:
    """What `SocketWriter` uses of a WebSocket, recording what it is asked to do."""

    def __init__(self) -> None:
        self.application_state = WebSocketState.CONNECTED
        self.sent: list[str] = []
        self.closed_with: int | None = None
        self.release = asyncio.Event()
        self.release.set()

    async def send_text(self, text: str) -> None:
        await self.release.wait()
        self.sent.append(text)

    async def close(self, code: int) -> None:
        self.closed_with = code
        self.application_state = WebSocketState.DISCONNECTED


def _writer(socket: _FakeSocket, connection: Connection) -> SocketWriter:
    return SocketWriter(cast(WebSocket, socket), connection)


async def test_idle_socket_has_no_writer_task() -> None:
    """The writer's task runs while frames wait and ends when they are sent."""
    socket = _FakeSocket()
    connection = Connection("s-1", "u-1", Role.CLIENT, "websocket")
    writer = _writer(socket, connection)
    before = len(asyncio.all_tasks())

    connection.push("a")
    connection.push("b")
    assert len(asyncio.all_tasks()) == before + 1
    await writer.finish(1)

    assert socket.sent == ["a", "b"]
    assert len(asyncio.all_tasks()) == before


async def test_frames_queued_while_sending_follow_in_order() -> None:
    """A frame pushed while the writer waits on the network goes out after it."""
    socket = _FakeSocket()
    socket.release.clear()
    connection = Connection("s-1", "u-1", Role.CLIENT, "websocket")
    writer = _writer(socket, connection)

    connection.push("a")
    await asyncio.sleep(0)
    connection.push("b")
    connection.close(CloseCode.TOO_MANY_MESSAGES)
    socket.release.set()
    await writer.finish(1)

    assert socket.sent == ["a", "b"]
    assert socket.closed_with == CloseCode.TOO_MANY_MESSAGES


async def test_finish_gives_up_on_a_stuck_peer() -> None:
    """A peer that never reads does not hold the socket's end past the timeout."""
    socket = _FakeSocket()
    socket.release.clear()
    connection = Connection("s-1", "u-1", Role.CLIENT, "websocket")
    writer = _writer(socket, connection)
    before = len(asyncio.all_tasks())
    connection.push("a")

    await writer.finish(0.05)

    assert socket.sent == []
    assert len(asyncio.all_tasks()) == before
