"""The ready mark outside FastAPI's stack: the request a push waits for.

A participant's `POST /api/sessions/{id}/ready` is written before the other
participant's push can leave, and under a stream of marks FastAPI's routing,
dependency solving and validation took a quarter of a node's CPU. So `App` hands
this request here first, and only its plain case is served here: our own bearer
token naming a participant, a JSON body that is exactly `{"ready": true}` or
`{"ready": false}`, and no cross-origin request when CORS is on. Anything else goes
to the FastAPI route, with its body and before anything is done, so that a request
refused for its credentials or its body is refused there, in its words. A mark the
service refuses is answered by the same error handlers as the route's.
"""

from __future__ import annotations

import json
import re
import time

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionclock.constants import SESSION_ID_PATTERN
from sessionclock.credentials import Kind
from sessionclock.errors import AuthError
from sessionclock.http.errors import error_response
from sessionclock.http.middleware import record_request, replay
from sessionclock.http.routes.sessions import READY_ROUTE, snapshot_response
from sessionclock.runtime import Runtime

log = structlog.get_logger(__name__)

READY_PATH = re.compile(r"/api/sessions/(?P<session_id>[^/]+)/ready")

_SESSION_ID = re.compile(SESSION_ID_PATTERN)


class ReadyMarks:
    """Serve plain `POST …/ready` requests; hand every other one to `full_stack`."""

    def __init__(self, full_stack: ASGIApp, *, max_body_bytes: int, cors: bool) -> None:
        self._full_stack = full_stack
        self._max_body_bytes = max_body_bytes
        self._cors = cors

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, session_id: str
    ) -> None:
        messages, body = await self._read_body(scope, receive)
        mark = None if body is None else self._plain(scope, session_id, body)
        if mark is None:
            await self._full_stack(scope, replay(messages, receive), send)
            return

        started = time.perf_counter()
        runtime, user_id, ready = mark
        status = 500
        try:
            try:
                session = await runtime.service.mark_ready(session_id, user_id, ready)
                response = await snapshot_response(runtime, session)
            except Exception as error:
                response = await error_response(Request(scope), error)
            status = response.status_code
            await response(scope, receive, send)
        finally:
            record_request(scope, READY_ROUTE, status, started)

    async def _read_body(
        self, scope: Scope, receive: Receive
    ) -> tuple[list[Message], bytes | None]:
        """The messages read, and the whole body if it came complete within the cap."""
        messages: list[Message] = []
        declared = _header(scope, b"content-length")
        if declared is None or not declared.isdigit():
            return messages, None
        if int(declared) > self._max_body_bytes:
            return messages, None

        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, None
            seen += len(message.get("body", b""))
            if seen > self._max_body_bytes:
                return messages, None
            if not message.get("more_body", False):
                break
        return messages, b"".join(m.get("body", b"") for m in messages)

    def _plain(
        self, scope: Scope, session_id: str, body: bytes
    ) -> tuple[Runtime, str, bool] | None:
        """The runtime, caller and mark of a plain request; None for any other."""
        if _SESSION_ID.fullmatch(session_id) is None:
            return None
        if self._cors and _header(scope, b"origin") is not None:
            return None
        content_type = _header(scope, b"content-type") or b""
        if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            return None

        scheme, _, token = (_header(scope, b"authorization") or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return None
        try:
            fields = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if type(fields) is not dict or fields.keys() != {"ready"}:
            return None
        ready = fields["ready"]
        if type(ready) is not bool:
            return None

        runtime: Runtime = scope["app"].state.runtime
        try:
            # Our own tokens only: a booking source's needs a round trip, and an
            # error here must be answered by the route, which says what was wrong.
            principal = runtime.authenticator.authenticate(token.decode("latin-1"))
        except AuthError:
            return None
        if principal.kind is not Kind.PARTICIPANT or principal.user_id is None:
            return None
        log.debug(
            "credentials.accepted", kind=principal.kind.value, user_id=principal.user_id
        )
        return runtime, principal.user_id, ready


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
