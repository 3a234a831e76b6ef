"""The python-socketio peer: the lobby a team would build on Socket.IO and Redis.

One ASGI app under the same uvicorn as sessionclock: `POST
/api/sessions/{id}/ready` checks the participant's token, writes the mark with one
`UPDATE … RETURNING` on asyncpg (leaner than sessionclock's SQLAlchemy path), and
emits the new snapshot to the session's room; with `--redis-url` an
`AsyncRedisManager` carries every emit to the other nodes, as its documentation
recommends for more than one server. A socket joins its session's room on connect
(auth `{"token", "session_id"}`) and gets the current snapshot at once. The payload
is sessionclock's own snapshot, so both carry the same bytes.

    python bench/peers/socketio_server.py --port N --database-dsn DSN [--redis-url U]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import socketio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers import SECRET_KEY

from sessionclock.core.clock import SystemClock
from sessionclock.core.session import from_record, snapshot
from sessionclock.credentials import TokenIssuer
from sessionclock.errors import SessionClockError

# Both marks set: the session is ready; one of them: waiting.
_MARK = """
UPDATE sessions SET
    client_ready_at_ms = CASE WHEN client_id = $2
        THEN (CASE WHEN $3 THEN $4::bigint END) ELSE client_ready_at_ms END,
    companion_ready_at_ms = CASE WHEN companion_id = $2
        THEN (CASE WHEN $3 THEN $4::bigint END) ELSE companion_ready_at_ms END,
    version = version + 1,
    updated_at_ms = $4
WHERE id = $1 AND $2 IN (client_id, companion_id)
    AND status IN ('waiting', 'ready')
RETURNING *
"""
_STATUS = """
UPDATE sessions SET status = CASE
    WHEN client_ready_at_ms IS NOT NULL AND companion_ready_at_ms IS NOT NULL
    THEN 'ready' ELSE 'waiting' END
WHERE id = $1 RETURNING *
"""
_GET = "SELECT * FROM sessions WHERE id = $1"


def build_app(dsn: str, redis_url: str | None) -> Any:
    """The Socket.IO server wrapped around a one-route Starlette app."""
    clock = SystemClock()
    issuer = TokenIssuer(SECRET_KEY, clock)
    manager = socketio.AsyncRedisManager(redis_url) if redis_url else None
    sio = socketio.AsyncServer(
        async_mode="asgi", client_manager=manager, cors_allowed_origins="*"
    )
    pools: list[asyncpg.Pool] = []

    def frame(row: asyncpg.Record) -> dict[str, Any]:
        return snapshot(from_record(dict(row)), clock.now_ms())

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, _environ: dict[str, Any], auth: Any) -> bool:
        try:
            user_id = issuer.verify(auth["token"])
        except (SessionClockError, KeyError, TypeError):
            return False
        session_id = str(auth["session_id"])
        row = await pools[0].fetchrow(_GET, session_id)
        if row is None or user_id not in (row["client_id"], row["companion_id"]):
            return False
        await sio.enter_room(sid, session_id)
        await sio.emit("snapshot", frame(row), to=sid)
        return True

    async def mark(request: Request) -> JSONResponse:
        bearer = request.headers.get("authorization", "")
        try:
            user_id = issuer.verify(bearer.removeprefix("Bearer ").strip())
        except SessionClockError:
            return JSONResponse({"detail": "bad token"}, status_code=401)
        session_id = request.path_params["session_id"]
        ready = bool((await request.json()).get("ready"))
        async with pools[0].acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                _MARK, session_id, user_id, ready, clock.now_ms()
            )
            if row is not None:
                row = await connection.fetchrow(_STATUS, session_id)
        if row is None:
            return JSONResponse({"detail": "not possible"}, status_code=409)
        body = frame(row)
        await sio.emit("snapshot", body, room=session_id)
        return JSONResponse(body)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pools.append(await asyncpg.create_pool(dsn, min_size=4, max_size=20))
        yield
        await pools[0].close()

    web = Starlette(
        routes=[Route("/api/sessions/{session_id}/ready", mark, methods=["POST"])],
        lifespan=lifespan,
    )
    return socketio.ASGIApp(sio, other_asgi_app=web)


class _ReadyPrinter(uvicorn.Server):
    """Prints `ready` once uvicorn listens, so that the benchmark may go on."""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        print("ready", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-dsn", required=True)
    parser.add_argument("--redis-url")
    args = parser.parse_args()
    config = uvicorn.Config(
        build_app(args.database_dsn, args.redis_url),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        # The same socket settings sessionclock's `serve` uses.
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        server_header=False,
    )
    _ReadyPrinter(config).run()


if __name__ == "__main__":
    main()
