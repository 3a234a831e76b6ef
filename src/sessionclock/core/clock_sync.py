"""Estimating the server's clock from `time` exchanges, as every client does.

One exchange gives three readings: the client sends at `t0` (its clock), the server
stamps `server_ms`, the client receives at `t3` (its clock). The server read its clock
somewhere between `t0` and `t3`, since no message travels back in time, and its stamp
is that reading floored to the millisecond. So the offset `θ = server - client` lies
in `[server_ms - t3, server_ms + 1 ms - t0]`, whatever the two ways took: an interval
one round trip (plus the stamp's millisecond) wide.

Every kept sample bounds the same offset, so it lies in all their intervals at once:
the estimator intersects them, from the highest lower bound to the lowest upper bound,
and takes the middle. The estimate is then off by at most half the intersection's
width (`error_bound_ms`), never more than half the fastest round trip used plus half
a millisecond (and that sample's drift allowance, below), and less when samples slow
in opposite directions cut the interval from both sides. A sample stalled one way
still bounds the offset truly, only loosely on that side, so it cannot pull the
estimate as it would pull a mean. What no bound can see is a path slower one way on
every exchange: the estimate is then off by about half the difference between the
shortest delay there and the shortest delay back, still within the bound.

The two clocks do not run at exactly the same rate, so the offset itself moves a
little while samples accumulate. An older sample bounds the current offset only as
far as the drift allowed since it was taken: its interval is widened on both sides by
`drift_ppm` times the time from its `t0` to the newest sample's `t3`. Old samples
therefore still count, more loosely the older they are, and the true offset stays in
every widened interval as long as the clocks drift apart no faster than that.

Intervals that do not overlap mean the premise failed: the server's clock stepped,
the clocks drifted faster than allowed, or a sample is wrong. The estimator then uses
the newest samples that still overlap, so after a step it follows the server's new
clock. The JavaScript client (`sessionclock.js`) does exactly the same.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice

from sessionclock.constants import CLOCK_DRIFT_PPM, CLOCK_KEPT_EXCHANGES

# The server stamps its clock floored to whole milliseconds (`SystemClock.now_ms`):
# its clock read up to a millisecond more than the stamp says.
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
    def offset_low_ms(self) -> float:
        """The lowest offset possible: the server stamped just as the reply left."""
        return self.server_ms - self.t3_ms

    @property
    def offset_high_ms(self) -> float:
        """The highest offset possible: the server stamped as the request left."""
        return self.server_ms + _STAMP_RESOLUTION_MS - self.t0_ms


@dataclass(frozen=True, slots=True)
class _Interval:
    low_ms: float
    high_ms: float


class OffsetEstimator:
    """The offset of the server's clock from this client's, from recent exchanges."""

    def __init__(
        self, keep: int = CLOCK_KEPT_EXCHANGES, drift_ppm: float = CLOCK_DRIFT_PPM
    ) -> None:
        if keep < 1:
            raise ValueError(f"expected keep >= 1, got keep={keep}")
        if drift_ppm < 0:
            raise ValueError(f"expected drift_ppm >= 0, got drift_ppm={drift_ppm}")
        self._samples: deque[TimeSample] = deque(maxlen=keep)
        self._drift_per_ms = drift_ppm / 1_000_000
        self._interval: _Interval | None = None

    def add(self, t0_ms: float, server_ms: float, t3_ms: float) -> None:
        if t3_ms < t0_ms:
            raise ValueError("a reply cannot arrive before its request was sent")
        self._samples.append(TimeSample(t0_ms, server_ms, t3_ms))
        self._interval = self._intersect()

    @property
    def sample_count(self) -> int:
        return len(self._samples)

    @property
    def offset_ms(self) -> float | None:
        """Server clock minus client clock; None before the first exchange.

        The middle of the intersection of the kept samples' intervals, or of the
        newest samples' whose intervals still overlap.
        """
        if self._interval is None:
            return None
        return (self._interval.low_ms + self._interval.high_ms) / 2

    @property
    def error_bound_ms(self) -> float | None:
        """How far `offset_ms` can be off at most: half the intersection's width.

        It bounds the offset as it was when the server stamped the newest sample,
        while the two clocks drift apart no faster than `drift_ppm`; from then on
        the true error may grow by `drift_ppm` of the time since. None before the
        first exchange.
        """
        if self._interval is None:
            return None
        return (self._interval.high_ms - self._interval.low_ms) / 2

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

    def _intersect(self) -> _Interval:
        # From the newest back, stopping before the first sample that would leave
        # nothing: after a step of the server's clock the recent samples win.
        newest = self._samples[-1]
        low_ms, high_ms = newest.offset_low_ms, newest.offset_high_ms
        for sample in islice(reversed(self._samples), 1, None):
            # The offset may have moved since this sample was taken, by at most the
            # allowed drift over the time from its send to the newest reply.
            slack_ms = (newest.t3_ms - sample.t0_ms) * self._drift_per_ms
            next_low_ms = max(low_ms, sample.offset_low_ms - slack_ms)
            next_high_ms = min(high_ms, sample.offset_high_ms + slack_ms)
            if next_high_ms < next_low_ms:
                break
            low_ms, high_ms = next_low_ms, next_high_ms
        return _Interval(low_ms, high_ms)
