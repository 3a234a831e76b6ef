"""A real HTTP receiver for webhook tests: it checks every signature on its own."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One delivery as it arrived, and whether its signature was right."""

    event_id: str
    type: str
    body: dict[str, Any]
    signature_ok: bool
    timestamp_s: int
    answered: int


@dataclass
class Receiver:
    """A platform's webhook endpoint on a free port; `fail_with` makes it refuse."""

    secret: str
    fail_with: int | None = None
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                answered = receiver.fail_with or 204
                receiver._record(dict(self.headers.items()), body, answered)
                self.send_response(answered)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def accepted(self) -> list[Received]:
        return [item for item in self.received if item.answered < 300]

    def _record(self, headers: dict[str, str], body: bytes, answered: int) -> None:
        # Computed here from the documented scheme, not with sessionclock's code.
        parts = dict(
            part.split("=", 1) for part in headers["Sessionclock-Signature"].split(",")
        )
        timestamp_s = int(parts["t"])
        expected = hmac.new(
            self.secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256
        ).hexdigest()
        self.received.append(
            Received(
                event_id=headers["Sessionclock-Event-Id"],
                type=headers["Sessionclock-Event-Type"],
                body=json.loads(body),
                signature_ok=hmac.compare_digest(expected, parts.get("v1", "")),
                timestamp_s=timestamp_s,
                answered=answered,
            )
        )
