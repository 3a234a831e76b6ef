"""ASGI middleware: a cap on request bodies, and request timing for logs and metrics."""

from __future__ import annotations

import json
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionclock.metrics import Metrics

log = structlog.get_logger(__name__)


class BodyLimit:
    """Answer 413 to a request body over `max_bytes`, declared or streamed.

    The body is read here, before any route sees it, and replayed: bodies are small
    (the cap is 64 KiB by default), and a limit hit inside a route's own body
    parsing would surface as a 400 about parsing instead of a 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (
            not declared.isdigit() or int(declared) > self.max_bytes
        ):
            await self._refuse(send)
            return

        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away; let the app see the disconnect.
                await self.app(scope, replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, replay([body], receive), send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"request body: expected at most {self.max_bytes} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives `messages` again before reading on."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


class RequestTiming:
    """Time every HTTP request by its route template; log at DEBUG, errors louder."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            record_request(scope, _route_template(scope), status, started)


def record_request(scope: Scope, route: str, status: int, started: float) -> None:
    """Observe a request that began at `perf_counter()` `started`, and log it."""
    elapsed_s = time.perf_counter() - started
    metrics: Metrics = scope["app"].state.runtime.metrics
    metrics.request_latency.labels(route, scope["method"], str(status)).observe(
        elapsed_s
    )
    log.debug(
        "request.served",
        method=scope["method"],
        route=route,
        status=status,
        duration_ms=round(elapsed_s * 1000, 2),
    )


def _route_template(scope: Scope) -> str:
    # Templates, not paths: one time series per route, whatever the session ids.
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
