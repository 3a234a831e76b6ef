"""Estimating the server's clock from `time` exchanges, as every client does.

One exchange gives four readings: the client sends at `t0` (its clock), the server
stamps `server_ms`, the client receives at `t3` (its clock). If the way there and the
way back took as long, the server's clock at the client's midpoint `(t0 + t3) / 2`
read `server_ms`, so `offset = server_ms - (t0 + t3) / 2`. The error of one sample is
at most half its round trip, and less the more symmetric the path: so the estimator
keeps the samples with the shortest round trips and takes the median of their
offsets. The JavaScript client (`sessionclock.js`) does exactly the same.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimeSample:
    t0_ms: float
    server_ms: float
    t3_ms: float

    @property
    def round_trip_ms(self) -> float:
        return self.t3_ms - self.t0_ms

    @property
    def offset_ms(self) -> float:
        return self.server_ms - (self.t0_ms + self.t3_ms) / 2


class OffsetEstimator:
    """The offset of the server's clock from this client's, from recent exchanges."""

    def __init__(self, keep: int = 10, best: int = 3) -> None:
        if not 1 <= best <= keep:
            raise ValueError(f"expected 1 <= best <= keep, got best={best} keep={keep}")
        self._samples: deque[TimeSample] = deque(maxlen=keep)
        self._best = best

    def add(self, t0_ms: float, server_ms: float, t3_ms: float) -> None:
        if t3_ms < t0_ms:
            raise ValueError("a reply cannot arrive before its request was sent")
        self._samples.append(TimeSample(t0_ms, server_ms, t3_ms))

    @property
    def sample_count(self) -> int:
        return len(self._samples)

    @property
    def offset_ms(self) -> float | None:
        """Server clock minus client clock; None before the first exchange."""
        if not self._samples:
            return None
        fastest = sorted(self._samples, key=lambda sample: sample.round_trip_ms)
        return statistics.median(sample.offset_ms for sample in fastest[: self._best])

    @property
    def round_trip_ms(self) -> float | None:
        """The shortest round trip kept (a measure of the path, not an error bound).

        With the median of the three fastest samples, the estimate is off by at most
        half the second-fastest round trip; usually far less.
        """
        if not self._samples:
            return None
        return min(sample.round_trip_ms for sample in self._samples)

    def server_now_ms(self, client_now_ms: float) -> float:
        offset = self.offset_ms
        if offset is None:
            raise ValueError("no exchange yet: the server's clock is unknown")
        return client_now_ms + offset
