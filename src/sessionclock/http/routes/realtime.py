"""Pushed state: the session's WebSocket and its Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Path, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState

from sessionclock.constants import (
    PAGE_TOKEN_COOKIE,
    SESSION_ID_PATTERN,
    SSE_KEEPALIVE_S,
    WS_MAX_BAD_FRAMES,
    WS_MAX_MESSAGE_BYTES,
    WS_MESSAGE_BURST,
    WS_MESSAGES_PER_S,
)
from sessionclock.credentials import Kind, Principal
from sessionclock.errors import Forbidden, InvalidInput, SessionClockError
from sessionclock.http.deps import ParticipantDep, RuntimeDep
from sessionclock.http.errors import status_code_of
from sessionclock.http.schemas import error_responses
from sessionclock.realtime.hub import CloseCode, Connection, frame
from sessionclock.realtime.protocol import (
    CallFrame,
    ReadyFrame,
    SignalFrame,
    TimeFrame,
    TokenBucket,
    parse_client_frame,
)
from sessionclock.runtime import Runtime
from sessionclock.settings import Settings

log = structlog.get_logger(__name__)

router = APIRouter(tags=["real time"])

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_SSE_DISCONNECT_CHECK_S = 3.0


@router.get(
    "/api/sessions/{session_id}/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "event stream"},
        **error_responses(401, 403, 404, 422),
    },
)
async def session_events(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    request: Request,
    runtime: RuntimeDep,
    participant: ParticipantDep,
) -> StreamingResponse:
    """Server-Sent Events: `snapshot`, `presence` and `warning` events as they happen.

    The first event is the current snapshot. Each event's data is the same JSON
    object the WebSocket sends; a comment line keeps idle connections open.
    """
    assert participant.user_id is not None
    session, role = await runtime.service.get_for(session_id, participant.user_id)
    connection = Connection(session_id, participant.user_id, role, "sse")
    await runtime.hub.attach(connection, session)

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: {int(runtime.settings.sync_interval_s * 1000)}\n\n"
            idle_s = 0.0
            while True:
                try:
                    encoded = await asyncio.wait_for(
                        connection.outbox.get(), _SSE_DISCONNECT_CHECK_S
                    )
                except TimeoutError:
                    # A stream learns of a gone client only when it writes or asks.
                    if await request.is_disconnected():
                        return
                    idle_s += _SSE_DISCONNECT_CHECK_S
                    if idle_s >= SSE_KEEPALIVE_S:
                        idle_s = 0.0
                        yield ": keep-alive\n\n"
                    continue
                if encoded is None:
                    return
                kind = json.loads(encoded)["type"]
                yield f"event: {kind}\ndata: {encoded}\n\n"
        finally:
            await runtime.hub.detach(connection)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def session_socket(websocket: WebSocket) -> None:
    """The session's WebSocket; see `realtime.protocol` for what clients send."""
    runtime: Runtime = websocket.app.state.runtime
    session_id: str = websocket.path_params["session_id"]

    # Refuse before accepting: a refused client learns nothing but the status.
    try:
        principal = await _socket_principal(websocket, runtime)
        if not _SESSION_ID.match(session_id):
            raise InvalidInput("session_id", "a session id", session_id)
        assert principal.user_id is not None
        session, role = await runtime.service.get_for(session_id, principal.user_id)
    except SessionClockError as error:
        status = status_code_of(error)
        log.warning(
            "socket.refused", session_id=session_id, status=status, detail=error.detail
        )
        await _deny(websocket, status, error.detail)
        return
    except (DBAPIError, PoolTimeout) as error:
        # The client reconnects after its back-off, as after any lost socket.
        log.error(
            "socket.database_unreachable", error=str(getattr(error, "orig", error))
        )
        await _deny(
            websocket, 503, "the database is not reachable right now; try again"
        )
        return

    await websocket.accept()
    connection = Connection(session_id, principal.user_id, role, "websocket")
    writer = SocketWriter(websocket, connection)
    await runtime.hub.attach(connection, session)
    # What follows lasts as long as the socket: keep nothing in this frame that
    # the socket no longer needs.
    del session, principal
    try:
        await _read(websocket, connection, runtime)
    finally:
        with contextlib.suppress(Exception):
            await runtime.calls.leave(connection, "disconnected")
        connection.close(connection.close_code or CloseCode.NORMAL)
        await writer.finish(5)
        await runtime.hub.detach(connection)


class SocketWriter:
    """Sends a socket's queued frames, in a task that runs only while there are any.

    Most sockets are idle most of the time; a writer task parked on an empty queue
    for each of them would cost memory for nothing. The task starts when a frame is
    queued and ends when the queue is empty; the frame `None` closes the socket.
    """

    __slots__ = ("_connection", "_task", "_websocket")

    def __init__(self, websocket: WebSocket, connection: Connection) -> None:
        self._websocket = websocket
        self._connection = connection
        self._task: asyncio.Task[None] | None = None
        connection.outbox.on_frame = self._wake

    def _wake(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        outbox = self._connection.outbox
        try:
            while not outbox.empty():
                encoded = outbox.get_nowait()
                if encoded is None:
                    await self._close()
                    return
                await self._websocket.send_text(encoded)
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer is gone: the reader learns it too, and ends the socket.
            return
        finally:
            self._task = None

    async def _close(self) -> None:
        if self._websocket.application_state is WebSocketState.CONNECTED:
            code = int(self._connection.close_code or CloseCode.NORMAL)
            with contextlib.suppress(Exception):
                await self._websocket.close(code)

    async def finish(self, timeout_s: float) -> None:
        """Let the writer send what is queued, the close last; or give up."""
        task = self._task
        self._connection.outbox.on_frame = None
        if task is not None:
            # On timeout, wait_for cancels the task.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, timeout_s)


async def _read(websocket: WebSocket, connection: Connection, runtime: Runtime) -> None:
    bucket = TokenBucket(WS_MESSAGES_PER_S, WS_MESSAGE_BURST, time.monotonic())
    bad_frames = 0
    while connection.close_code is None:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            text = (message.get("bytes") or b"").decode("utf-8", "replace")

        if len(text.encode()) > WS_MAX_MESSAGE_BYTES:
            connection.close(CloseCode.MESSAGE_TOO_BIG)
            return
        if not bucket.take(time.monotonic()):
            log.warning("socket.flooded", session_id=connection.session_id)
            connection.close(CloseCode.TOO_MANY_MESSAGES)
            return

        try:
            parsed = parse_client_frame(text)
            if isinstance(parsed, TimeFrame):
                now_ms = runtime.clock.now_ms()
                connection.push(frame("time", t0=parsed.t0, server_time_ms=now_ms))
            elif isinstance(parsed, ReadyFrame):
                await runtime.service.mark_ready(
                    connection.session_id, connection.user_id, parsed.ready
                )
            elif isinstance(parsed, SignalFrame):
                await runtime.calls.signal(connection, parsed.data)
            else:
                await _call(connection, parsed, runtime)
        except SessionClockError as error:
            status = status_code_of(error)
            connection.push(frame("error", status=status, detail=error.detail))
            if isinstance(error, InvalidInput):
                bad_frames += 1
                if bad_frames >= WS_MAX_BAD_FRAMES:
                    connection.close(CloseCode.TOO_MANY_BAD_FRAMES)
                    return
        except DBAPIError as error:
            log.error("socket.database_unreachable", error=str(error.orig))
            detail = "the database is not reachable right now; try again"
            connection.push(frame("error", status=503, detail=detail))
        except PoolTimeout:
            log.error("socket.database_busy", session_id=connection.session_id)
            detail = "the database is too busy right now; try again"
            connection.push(frame("error", status=503, detail=detail))
        except Exception:
            log.exception("socket.failed", session_id=connection.session_id)
            connection.close(CloseCode.INTERNAL_ERROR)
            return


async def _call(connection: Connection, parsed: CallFrame, runtime: Runtime) -> None:
    if parsed.action == "join":
        assert parsed.peer_id is not None
        await runtime.calls.join(connection, parsed.peer_id)
    elif parsed.action == "leave":
        await runtime.calls.leave(connection, "hung up")
    else:
        assert parsed.state is not None
        await runtime.calls.media(connection, parsed.state)


async def _socket_principal(websocket: WebSocket, runtime: Runtime) -> Principal:
    if not origin_allowed(
        websocket.headers.get("origin"), websocket.headers.get("host"), runtime.settings
    ):
        raise Forbidden("a browser socket", "a page of this site (check its Origin)")
    header = websocket.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        principal = await runtime.authenticator.authenticate_any(credentials.strip())
    else:
        token = websocket.query_params.get("access_token") or websocket.cookies.get(
            PAGE_TOKEN_COOKIE
        )
        principal = await runtime.authenticator.authenticate_participant_any(token)
    if principal.kind is not Kind.PARTICIPANT:
        raise Forbidden("a session socket", "a participant token naming the caller")
    return principal


def origin_allowed(origin: str | None, host: str | None, settings: Settings) -> bool:
    """Whether a browser page at `origin` may open sockets here.

    No Origin header means no browser (a server, the Python client): allowed, the
    token decides. Otherwise the origin must be the configured public URL's, one of
    the allowed origins, or, with neither configured, this very host.
    """
    if origin is None:
        return True
    allowed = set(settings.allowed_origins)
    if settings.public_url:
        parts = urlsplit(settings.public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    if allowed:
        return origin.rstrip("/") in allowed
    return host is not None and urlsplit(origin).netloc == host


async def _deny(websocket: WebSocket, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        # A server without the denial extension: a close before accept is a 403.
        await websocket.close(code=1008)


SOCKET_PATH = re.compile(r"/api/sessions/(?P<session_id>[^/]+)/ws")


async def socket_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The socket as a bare ASGI app, for `App` to call before any middleware.

    A socket lives for the whole session, and every layer of the HTTP stack around
    it (FastAPI's routing and dependency solving, the error and timing middleware)
    would keep its own coroutine frames alive for as long: about 6 KiB a socket.
    None of them does anything for a socket; authentication and errors are handled
    here.
    """
    await session_socket(WebSocket(scope, receive, send))
