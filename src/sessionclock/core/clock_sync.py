"""Estimating the server's clock from `time` exchanges, as every client does.

One exchange gives four readings: the client sends at `t0` (its clock), the server
stamps `server_ms`, the client receives at `t3` (its clock). If the way there and the
way back took as long, the server's clock at the client's midpoint `(t0 + t3) / 2`
read `server_ms`, so `offset = server_ms - (t0 + t3) / 2`. The error of one sample is
at most half its round trip, and less the more symmetric the path. On a jittery path
each sample's error is noise that averaging shrinks, and a slow sample can be far off:
so the estimator averages the offsets of the faster half of the recent samples, each
weighted by the inverse square of its round trip. The JavaScript client
(`sessionclock.js`) does exactly the same.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# The server stamps whole milliseconds, so even a zero round trip leaves about a
# millisecond of doubt; adding it keeps every weight finite.
_STAMP_RESOLUTION_MS = 1.0


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

    def __init__(self, keep: int = 10) -> None:
        if keep < 1:
            raise ValueError(f"expected keep >= 1, got keep={keep}")
        self._samples: deque[TimeSample] = deque(maxlen=keep)

    def add(self, t0_ms: float, server_ms: float, t3_ms: float) -> None:
        if t3_ms < t0_ms:
            raise ValueError("a reply cannot arrive before its request was sent")
        self._samples.append(TimeSample(t0_ms, server_ms, t3_ms))

    @property
    def sample_count(self) -> int:
        return len(self._samples)

    @property
    def offset_ms(self) -> float | None:
        """Server clock minus client clock; None before the first exchange.

        The weighted mean of the offsets of the faster half of the kept samples (the
        fastest one of one or two), each weighted by `1 / (round trip + 1 ms)²`. It
        lies between the offsets it averages, so it is off by at most half the
        slowest round trip it uses.
        """
        if not self._samples:
            return None
        by_round_trip = sorted(self._samples, key=lambda sample: sample.round_trip_ms)
        used = by_round_trip[: (len(by_round_trip) + 1) // 2]

        # Sum the differences from the fastest offset, not the offsets themselves:
        # equal offsets then give that offset exactly, whatever the weights.
        base_ms = used[0].offset_ms
        weighted_sum_ms = 0.0
        weight_sum = 0.0
        for sample in used:
            weight = 1 / (sample.round_trip_ms + _STAMP_RESOLUTION_MS) ** 2
            weighted_sum_ms += weight * (sample.offset_ms - base_ms)
            weight_sum += weight
        return base_ms + weighted_sum_ms / weight_sum

    @property
    def round_trip_ms(self) -> float | None:
        """The shortest round trip kept (a measure of the path, not an error bound)."""
        if not self._samples:
            return None
        return min(sample.round_trip_ms for sample in self._samples)

    def server_now_ms(self, client_now_ms: float) -> float:
        offset = self.offset_ms
        if offset is None:
            raise ValueError("no exchange yet: the server's clock is unknown")
        return client_now_ms + offset
