"""A Python client for a session's socket: snapshots, ready marks, the server's clock.

    async with await SessionSocket.connect(base_url, session_id, token) as socket:
        await socket.sync_clock()
        snapshot = await socket.next_snapshot()
        await socket.mark_ready()

The tests and benchmarks use it; platforms may too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from sessionclock.constants import CLOCK_CONNECT_EXCHANGES
from sessionclock.core.clock_sync import OffsetEstimator

ClientClock = Callable[[], float]
"""The client's clock in milliseconds; the wall clock unless a test gives another."""


TimeReply = tuple[dict[str, Any], float]
"""A `time` frame from the server and the client's clock when it arrived."""

Received = tuple[dict[str, Any], float]
"""A frame from the server and `time.perf_counter()` when it arrived."""


# Read the wall clock once; from then on only the monotonic clock moves time, so a
# changed system clock does not move a countdown (the browser module does the same).
_EPOCH_AT_MONOTONIC_ZERO_MS = time.time() * 1000 - time.monotonic() * 1000


def wall_clock_ms() -> float:
    """Epoch milliseconds that only move forward, whatever the system clock does."""
    return _EPOCH_AT_MONOTONIC_ZERO_MS + time.monotonic() * 1000


class SessionSocket:
    """One participant's socket to one session."""

    def __init__(self, connection: ClientConnection, clock: ClientClock) -> None:
        self._connection = connection
        self._clock = clock
        self._frames: asyncio.Queue[Received] = asyncio.Queue()
        self._time_replies: asyncio.Queue[TimeReply] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.estimator = OffsetEstimator()
        self.version = 0
        # When the frame `next_frame` last returned arrived, in `perf_counter`
        # seconds: a benchmark times a push by this, not by when it asked.
        self.received_s = 0.0
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls,
        base_url: str,
        session_id: str,
        token: str,
        *,
        clock: ClientClock = wall_clock_ms,
        origin: str | None = None,
        ping_interval_s: float | None = 20.0,
    ) -> Self:
        """Open the socket; raises websockets' InvalidStatus when it is refused."""
        url = base_url.replace("http", "ws", 1).rstrip("/")
        address = f"{url}/api/sessions/{quote(session_id)}/ws?access_token={token}"
        headers = {"Origin": origin} if origin else None
        connection = await connect(
            address,
            additional_headers=headers,
            open_timeout=10,
            max_size=2**20,
            ping_interval=ping_interval_s,
        )
        return cls(connection, clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, fields: dict[str, Any]) -> None:
        await self._connection.send(json.dumps(fields))

    async def send_raw(self, data: str | bytes) -> None:
        await self._connection.send(data)

    async def mark_ready(self, ready: bool = True) -> None:
        await self.send({"type": "ready", "ready": ready})

    async def join_call(self, peer_id: str) -> None:
        """Join the built-in call as the peer `peer_id` (the session must be ready)."""
        await self.send({"type": "call", "action": "join", "peer_id": peer_id})

    async def leave_call(self) -> None:
        await self.send({"type": "call", "action": "leave"})

    async def signal(self, data: dict[str, Any]) -> None:
        """Send WebRTC signalling (a description or a candidate) to the other."""
        await self.send({"type": "signal", "data": data})

    async def next_of(self, kind: str, timeout_s: float = 10) -> dict[str, Any]:
        """The next frame of one type; frames of other types are skipped."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            left_s = deadline - asyncio.get_running_loop().time()
            received = await self.next_frame(max(left_s, 0.001))
            if received["type"] == kind:
                return received

    async def next_frame(self, timeout_s: float = 10) -> dict[str, Any]:
        """The next frame other than a `time` reply."""
        fields, self.received_s = await asyncio.wait_for(self._frames.get(), timeout_s)
        return fields

    async def next_snapshot(self, timeout_s: float = 10) -> dict[str, Any]:
        """The next snapshot newer than the last one returned; others are skipped."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            left_s = deadline - asyncio.get_running_loop().time()
            received = await self.next_frame(max(left_s, 0.001))
            if received["type"] != "snapshot":
                continue
            session: dict[str, Any] = received["session"]
            if session["version"] > self.version:
                self.version = session["version"]
                return session

    async def sync_clock(
        self, exchanges: int = CLOCK_CONNECT_EXCHANGES, pause_s: float = 0.02
    ) -> float:
        """Run `time` exchanges; returns the estimated server-minus-client offset.

        The estimator keeps the most recent exchanges of every run, so a run every
        minute or so (the browser's is 10 exchanges) keeps the estimate current.
        """
        for _ in range(exchanges):
            await self.send({"type": "time", "t0": self._clock()})
            reply, received_ms = await asyncio.wait_for(self._time_replies.get(), 10)
            self.estimator.add(reply["t0"], reply["server_time_ms"], received_ms)
            await asyncio.sleep(pause_s)
        offset = self.estimator.offset_ms
        assert offset is not None
        return offset

    def server_now_ms(self) -> float:
        return self.estimator.server_now_ms(self._clock())

    async def close(self) -> None:
        await self._connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        try:
            async for raw in self._connection:
                received_ms = self._clock()
                received_s = time.perf_counter()
                fields = json.loads(raw)
                if fields.get("type") == "time":
                    await self._time_replies.put((fields, received_ms))
                else:
                    await self._frames.put((fields, received_s))
        except ConnectionClosed:
            # An abnormal close ends the stream too; the close code says why.
            return
        finally:
            self.close_code = self._connection.close_code
            self.closed.set()
