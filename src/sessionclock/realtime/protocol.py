"""What a client may send on a session's socket, and how fast.

Client to server, one JSON object per frame:
- `{"type": "ready", "ready": true|false}`: the same as `POST …/ready`.
- `{"type": "time", "t0": <client clock, ms>}`: answered with the server's time.

Anything else gets an `error` frame that says what was expected; a connection that
keeps sending bad frames, or too many, is closed with a documented code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sessionclock.errors import InvalidInput

CLIENT_TYPES = ("ready", "time")


@dataclass(frozen=True, slots=True)
class ReadyFrame:
    ready: bool


@dataclass(frozen=True, slots=True)
class TimeFrame:
    t0: float


ClientFrame = ReadyFrame | TimeFrame


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
    raise InvalidInput("type", f"one of {', '.join(CLIENT_TYPES)}", kind)


class TokenBucket:
    """At most `rate_per_s` frames a second on average, `burst` at once."""

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
