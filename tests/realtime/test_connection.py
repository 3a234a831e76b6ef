"""A connection's outbox: order, and what happens to a reader that falls behind."""

from __future__ import annotations

from sessionclock.constants import WS_OUTBOX_FRAMES
from sessionclock.core.session import Role
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
