"""A lean Socket.IO client (Engine.IO 4 over a WebSocket) for the benchmark's sockets.

The official `socketio.AsyncClient` starts an HTTP session and several tasks per
connection; ten thousand of them would measure the client, not the server. This one
speaks just the frames the job needs, on the same `websockets` library as
sessionclock's own client, so both sides of the comparison pay the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class SocketIOSocket:
    """One participant's Socket.IO connection to one session's room."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        # Each snapshot with `time.perf_counter()` when it arrived.
        self._snapshots: asyncio.Queue[tuple[dict[str, Any], float]] = asyncio.Queue()
        self._joined = asyncio.Event()
        self._refused = False
        self._reader = asyncio.create_task(self._read())
        self.version = 0
        # When the snapshot `next_snapshot` last returned arrived.
        self.received_s = 0.0

    @classmethod
    async def connect(cls, base_url: str, session_id: str, token: str) -> Self:
        """Open the transport and join the session; raises when refused."""
        url = base_url.replace("http", "ws", 1).rstrip("/")
        connection = await connect(
            f"{url}/socket.io/?EIO=4&transport=websocket",
            open_timeout=10,
            ping_interval=None,
            max_size=2**20,
        )
        opened = await asyncio.wait_for(connection.recv(), 10)
        if not str(opened).startswith("0"):
            raise RuntimeError(f"expected an Engine.IO open packet, got {opened!r}")
        socket = cls(connection)
        auth = json.dumps({"token": token, "session_id": session_id})
        await connection.send(f"40{auth}")
        await asyncio.wait_for(socket._joined.wait(), 10)
        if socket._refused:
            raise RuntimeError(f"the server refused session {session_id}")
        return socket

    async def next_snapshot(self, timeout_s: float = 10) -> dict[str, Any]:
        """The next snapshot newer than the last one returned; others are skipped."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            left_s = max(deadline - asyncio.get_running_loop().time(), 0.001)
            session, received_s = await asyncio.wait_for(self._snapshots.get(), left_s)
            if session["version"] > self.version:
                self.received_s = received_s
                self.version = session["version"]
                return session

    async def close(self) -> None:
        await self._connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        try:
            async for raw in self._connection:
                received_s = time.perf_counter()
                packet = str(raw)
                if packet == "2":
                    # The server's heartbeat: answer it or be dropped.
                    await self._connection.send("3")
                elif packet.startswith("40"):
                    self._joined.set()
                elif packet.startswith("44"):
                    self._refused = True
                    self._joined.set()
                elif packet.startswith("42"):
                    name, data = json.loads(packet[2:])[:2]
                    if name == "snapshot":
                        await self._snapshots.put((data, received_s))
        except ConnectionClosed:
            return
