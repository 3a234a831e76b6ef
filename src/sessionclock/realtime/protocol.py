"""What a client may send on a session's socket, and how fast.

Client to server, one JSON object per frame:
- `{"type": "ready", "ready": true|false}`: the same as `POST …/ready`.
- `{"type": "time", "t0": <client clock, ms>}`: answered with the server's time.
- `{"type": "call", "action": "join", "peer_id": "…"}`, `{"type": "call",
  "action": "leave"}`, `{"type": "call", "action": "media", "state": "connected"
  | "lost"}`: the built-in call's membership and what the browser sees of its media.
- `{"type": "signal", "data": {…}}`: WebRTC signalling (a description or an ICE
  candidate), relayed as it is to the other participant once both are in the call.

Anything else gets an `error` frame that says what was expected; a connection that
keeps sending bad frames, or too many, is closed with a documented code.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from sessionclock.errors import InvalidInput

CLIENT_TYPES = ("ready", "time", "call", "signal")
CALL_ACTIONS = ("join", "leave", "media")
MEDIA_STATES = ("connected", "lost")
_PEER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ReadyFrame:
    ready: bool


@dataclass(frozen=True, slots=True)
class TimeFrame:
    t0: float


@dataclass(frozen=True, slots=True)
class CallFrame:
    action: str
    peer_id: str | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class SignalFrame:
    data: dict[str, Any]


ClientFrame = ReadyFrame | TimeFrame | CallFrame | SignalFrame


def parse_client_frame(text: str) -> ClientFrame:
    """The frame a client sent; raises InvalidInput saying what was expected."""
    try:
        fields: Any = json.loads(text)
    except ValueError:
        raise InvalidInput("frame", "one JSON object", _shown(text)) from None
    if not isinstance(fields, dict):
        raise InvalidInput("frame", "one JSON object", _shown(text))

    kind = fields.get("type")
    if kind == "ready":
        ready = fields.get("ready")
        if not isinstance(ready, bool):
            raise InvalidInput("ready", "true or false", ready)
        return ReadyFrame(ready)
    if kind == "time":
        t0 = fields.get("t0")
        if (
            isinstance(t0, bool)
            or not isinstance(t0, int | float)
            or not math.isfinite(t0)
        ):
            raise InvalidInput("t0", "the client's clock in milliseconds", t0)
        return TimeFrame(float(t0))
    if kind == "call":
        return _call_frame(fields)
    if kind == "signal":
        data = fields.get("data")
        if not isinstance(data, dict) or not data:
            raise InvalidInput(
                "data", "a description or an ICE candidate as a JSON object", data
            )
        return SignalFrame(data)
    raise InvalidInput("type", f"one of {', '.join(CLIENT_TYPES)}", kind)


def _call_frame(fields: dict[str, Any]) -> CallFrame:
    action = fields.get("action")
    if action == "join":
        peer_id = fields.get("peer_id")
        if not isinstance(peer_id, str) or not _PEER_ID.match(peer_id):
            raise InvalidInput("peer_id", "1 to 64 letters, digits, - or _", peer_id)
        return CallFrame("join", peer_id=peer_id)
    if action == "leave":
        return CallFrame("leave")
    if action == "media":
        state = fields.get("state")
        if state not in MEDIA_STATES:
            raise InvalidInput("state", f"one of {', '.join(MEDIA_STATES)}", state)
        return CallFrame("media", state=state)
    raise InvalidInput("action", f"one of {', '.join(CALL_ACTIONS)}", action)


class TokenBucket:
    """At most `rate_per_s` frames a second on average, `burst` at once."""

    __slots__ = ("_burst", "_last_s", "_rate_per_s", "_tokens")

    def __init__(self, rate_per_s: float, burst: int, now_s: float) -> None:
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last_s = now_s

    def take(self, now_s: float) -> bool:
        elapsed_s = max(0.0, now_s - self._last_s)
        self._last_s = now_s
        self._tokens = min(self._burst, self._tokens + elapsed_s * self._rate_per_s)
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _shown(text: str) -> str:
    return text if len(text) <= 60 else text[:60] + "…"
