"""What every expiry peer shares: the database write and the push to the client.

Each peer decides *when* a session has ended in its own way (a periodic sweep, Redis
key expiry, APScheduler date jobs); what it then does is the same for all of them,
and the same work sessionclock does: one `UPDATE … WHERE id = ANY(…) RETURNING *`
for every batch it finds due, then sessionclock's own snapshot, pushed over a
WebSocket to each socket of the session. A socket connects to `/ws/{session_id}`
and gets the current snapshot at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from websockets.asyncio.server import ServerConnection, broadcast, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sessionclock.core.session import from_record, snapshot

_EXPIRE = """
UPDATE sessions SET status = 'expired', expired_reason = 'time_up',
    ended_at_ms = $2, version = version + 1, updated_at_ms = $2
WHERE id = ANY($1::text[]) AND status IN ('scheduled', 'waiting', 'ready')
RETURNING *
"""
_SWEEP = """
UPDATE sessions SET status = 'expired', expired_reason = 'time_up',
    ended_at_ms = $1, version = version + 1, updated_at_ms = $1
WHERE ends_at_ms <= $1 AND status IN ('scheduled', 'waiting', 'ready')
RETURNING *
"""
_GET = "SELECT * FROM sessions WHERE id = $1"
LIVE_SESSIONS = (
    "SELECT id, ends_at_ms FROM sessions "
    "WHERE status IN ('scheduled', 'waiting', 'ready')"
)


def now_ms() -> int:
    return int(time.time() * 1000)


class ExpiryPeer:
    """The peer's database pool and the sockets it holds, by session."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.sockets: dict[str, set[ServerConnection]] = {}
        self.expired = 0
        # Whatever runs the peer's schedule; held so that it is not collected.
        self.background: object = None

    async def expire(self, session_ids: list[str]) -> None:
        """Write the end of these sessions and push each one's new snapshot."""
        at_ms = now_ms()
        self._push(await self.pool.fetch(_EXPIRE, session_ids, at_ms), at_ms)

    async def expire_due(self) -> int:
        """The sweep's one statement: every live session whose end has passed."""
        at_ms = now_ms()
        rows = await self.pool.fetch(_SWEEP, at_ms)
        self._push(rows, at_ms)
        return len(rows)

    def _push(self, rows: list[asyncpg.Record], at_ms: int) -> None:
        self.expired += len(rows)
        for row in rows:
            held = self.sockets.get(row["id"])
            if held:
                body = snapshot(from_record(dict(row)), at_ms)
                broadcast(held, json.dumps({"type": "snapshot", "session": body}))

    async def handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        session_id = connection.request.path.rsplit("/", 1)[-1]
        row = await self.pool.fetchrow(_GET, session_id)
        if row is None:
            await connection.close(4404)
            return
        self.sockets.setdefault(session_id, set()).add(connection)
        try:
            body = snapshot(from_record(dict(row)), now_ms())
            await connection.send(json.dumps({"type": "snapshot", "session": body}))
            await connection.wait_closed()
        finally:
            self.sockets[session_id].discard(connection)


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-dsn", required=True)
    return parser


async def serve_peer(
    args: argparse.Namespace, schedule: Callable[[ExpiryPeer], Awaitable[Any]]
) -> None:
    """Load the peer's schedule, listen, say `ready`, run until terminated."""
    # As many connections as a sessionclock node's pool holds.
    pool = await asyncpg.create_pool(args.database_dsn, min_size=4, max_size=20)
    peer = ExpiryPeer(pool)
    running = await schedule(peer)
    async with serve(
        peer.handle, "127.0.0.1", args.port, ping_interval=20, max_size=2**16
    ):
        print("ready", flush=True)
        print(f"schedule loaded: {running}", file=sys.stderr, flush=True)
        await asyncio.Future()
