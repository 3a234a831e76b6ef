"""The ASGI application: routes, error handling and middleware around one runtime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from sessionclock import __version__
from sessionclock.collector import Collector
from sessionclock.core.clock import Clock
from sessionclock.http.errors import install_error_handlers
from sessionclock.http.hot_path import READY_PATH, ReadyMarks
from sessionclock.http.middleware import BodyLimit, RequestTiming
from sessionclock.http.routes import (
    bookings,
    calls,
    cleanup,
    client_logs,
    debug,
    ops,
    pages,
    participants,
    realtime,
    sessions,
)
from sessionclock.runtime import open_runtime
from sessionclock.settings import Settings

STATIC_DIR = Path(__file__).parent.parent / "web" / "static"

DESCRIPTION = """
One clock and one lobby for booked 1:1 video sessions.

Times are UTC, ISO 8601 with milliseconds and `Z`. Every snapshot carries the
server's time. Errors are JSON with a `detail` that says what was expected.
"""


class App(FastAPI):
    """The FastAPI application, with two hot paths dispatched before its stack.

    Session sockets (see `realtime.socket_app`) cost a few KiB less memory for as
    long as they live when they skip the HTTP middleware and routing, which they do
    not use. Ready marks (see `hot_path`) skip it in their plain case: under a
    stream of marks, a node spent a quarter of its CPU in FastAPI's routing,
    dependency solving and validation. Every other request, and every mark that is
    not plain, goes through the whole stack.
    """

    ready_marks: ReadyMarks | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            match = realtime.SOCKET_PATH.fullmatch(_path_in_app(scope))
            if match is not None:
                scope["app"] = self
                scope["path_params"] = match.groupdict()
                await realtime.socket_app(scope, receive, send)
                return
        elif scope["type"] == "http" and scope["method"] == "POST":
            match = READY_PATH.fullmatch(_path_in_app(scope))
            if match is not None and self.ready_marks is not None:
                scope["app"] = self
                await self.ready_marks(scope, receive, send, match["session_id"])
                return
        await super().__call__(scope, receive, send)

    async def full_stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request through FastAPI's middleware and routing, as any other."""
        await super().__call__(scope, receive, send)


def _path_in_app(scope: Scope) -> str:
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :]
    return path


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_scheduler: bool = True,
    collector: Collector | None = None,
) -> App:
    """A node's application; its lifespan opens the runtime and closes it again.

    With a `collector`, the lifespan also paces the garbage collector (`serve`
    passes one; tests, which share their process, do not).
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings, clock=clock, run_scheduler=run_scheduler
        ) as runtime:
            app.state.runtime = runtime
            pacing = None
            if collector is not None:
                pacing = asyncio.create_task(collector.run(), name="gc-collector")
            try:
                yield
            finally:
                if pacing is not None:
                    pacing.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pacing

    app = App(
        title="sessionclock",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    # The cleanup routes come first: `/api/sessions/cleanup` is not a session id.
    app.include_router(cleanup.router)
    app.include_router(bookings.router)
    app.include_router(sessions.router)
    app.include_router(participants.router)
    app.include_router(realtime.router)
    app.include_router(calls.router)
    app.include_router(ops.router)
    app.include_router(client_logs.router)
    app.include_router(pages.router)
    if settings.env == "development":
        app.include_router(debug.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if settings.allowed_origins:
        # A lobby embedded in a platform's own pages calls the API from there.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(RequestTiming)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.ready_marks = ReadyMarks(
        app.full_stack,
        max_body_bytes=settings.max_body_bytes,
        cors=bool(settings.allowed_origins),
    )
    return app
