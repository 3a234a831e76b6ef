"""The server's clock: wall time in UTC milliseconds, injectable for tests."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """Anything that tells the current UTC time in epoch milliseconds."""

    def now_ms(self) -> int: ...


class SystemClock:
    """The machine's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to; tests use it instead of sleeping."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, delta_ms: int) -> int:
        if delta_ms < 0:
            raise ValueError(f"a clock only moves forward; got {delta_ms} ms")
        self._now_ms += delta_ms
        return self._now_ms

    def set(self, now_ms: int) -> None:
        self._now_ms = now_ms


def to_iso(epoch_ms: int) -> str:
    """Format epoch milliseconds as the contract's ISO 8601: milliseconds and `Z`."""
    return f"{_iso_second(epoch_ms // 1000)}.{epoch_ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_second(epoch_s: int) -> str:
    # Every snapshot formats four or five instants, mostly the same ones again
    # (a session's start, end and lobby opening): remember the recent seconds.
    moment = _EPOCH + timedelta(seconds=epoch_s)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def to_epoch_ms(moment: datetime) -> int:
    """Exact epoch milliseconds of an aware datetime (sub-millisecond part dropped)."""
    if moment.tzinfo is None:
        raise ValueError("a datetime without a time zone has no single instant")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
