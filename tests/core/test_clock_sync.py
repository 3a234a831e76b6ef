"""The offset estimator: the server's clock, as a client with a wrong clock sees it."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessionclock.core.clock_sync import OffsetEstimator, TimeSample

# 2026-12-03T18:00:00.000Z: the true time when every simulation starts.
T0_MS = 1_796_320_800_000
MINUTE_MS = 60_000
SKEWS_MS = (-10 * MINUTE_MS, 0, 10 * MINUTE_MS)

# The promise: the same remaining time as the server, within 50 ms.
TOLERANCE_MS = 50
OUTLIER_MS = 300
OUTLIER_CHANCE = 0.1
SEEDS = range(50)


@dataclass(frozen=True, slots=True)
class Exchange:
    """One `time` exchange as the client recorded it, with its true one-way delays."""

    t0_ms: float
    server_ms: float
    t3_ms: float
    there_ms: float
    back_ms: float


@dataclass
class Network:
    """A true clock, a client clock off by `skew_ms`, and seeded, uneven delays."""

    skew_ms: float
    rng: random.Random
    true_now_ms: float = T0_MS
    stalls_left: int = 1

    def client_now_ms(self) -> float:
        return self.true_now_ms + self.skew_ms

    def delays_ms(self) -> tuple[float, float]:
        there_ms = self.rng.uniform(20, 80)
        back_ms = self.rng.uniform(20, 80)

        # Now and then one direction stalls (a retransmission, a busy proxy).
        if self.stalls_left > 0 and self.rng.random() < OUTLIER_CHANCE:
            self.stalls_left -= 1
            if self.rng.random() < 0.5:
                there_ms += OUTLIER_MS
            else:
                back_ms += OUTLIER_MS
        return there_ms, back_ms

    def exchange(self, there_ms: float, back_ms: float) -> Exchange:
        """Send at the client, stamp at the server in whole ms, receive back."""
        t0_ms = self.client_now_ms()
        self.true_now_ms += there_ms
        server_ms = math.floor(self.true_now_ms)
        self.true_now_ms += back_ms
        t3_ms = self.client_now_ms()

        # The JavaScript client pauses 50 ms between exchanges.
        self.true_now_ms += 50
        return Exchange(t0_ms, server_ms, t3_ms, there_ms, back_ms)

    def sync(self, estimator: OffsetEstimator, count: int) -> list[Exchange]:
        """Run `count` exchanges, fewer than half of which stall.

        When most exchanges stall, the fastest ones are stalled too and no median of
        them is right: 4 stalled of 5 can put the estimate 140 ms off.
        """
        self.stalls_left = (count - 1) // 2
        exchanges = [self.exchange(*self.delays_ms()) for _ in range(count)]
        for exchange in exchanges:
            estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)
        return exchanges


def _remaining_error_ms(estimator: OffsetEstimator, network: Network) -> float:
    """How far the client's remaining time to `ends_at` is from the true one."""
    ends_at_ms = T0_MS + 30 * MINUTE_MS
    network.true_now_ms += 7_321.5
    client_remaining_ms = ends_at_ms - estimator.server_now_ms(network.client_now_ms())
    true_remaining_ms = ends_at_ms - network.true_now_ms
    return client_remaining_ms - true_remaining_ms


def test_sample_offset_is_server_minus_midpoint() -> None:
    """One sample's offset is the server's stamp minus the client's midpoint."""
    sample = TimeSample(t0_ms=1_000, server_ms=5_060, t3_ms=1_100)

    assert sample.round_trip_ms == 100
    assert sample.offset_ms == 4_010


def test_offset_empty_is_none() -> None:
    """Before the first exchange the offset and the round trip are unknown."""
    estimator = OffsetEstimator()

    assert estimator.sample_count == 0
    assert estimator.offset_ms is None
    assert estimator.round_trip_ms is None


def test_server_now_empty_raises() -> None:
    """Asking for the server's time before any exchange is an error."""
    with pytest.raises(ValueError, match="no exchange yet"):
        OffsetEstimator().server_now_ms(T0_MS)


@pytest.mark.parametrize(("keep", "best"), [(10, 0), (10, -1), (3, 4), (0, 1)])
def test_init_bad_keep_or_best_raises(keep: int, best: int) -> None:
    """`best` must be at least one and at most `keep`."""
    with pytest.raises(ValueError, match=r"expected 1 <= best <= keep"):
        OffsetEstimator(keep=keep, best=best)


def test_add_reply_before_request_raises() -> None:
    """A reply received before its request was sent is refused and not kept."""
    estimator = OffsetEstimator()

    with pytest.raises(ValueError, match="cannot arrive before"):
        estimator.add(1_000, 5_000, 999)
    assert estimator.sample_count == 0


def test_add_zero_round_trip_is_exact() -> None:
    """A reply in the same millisecond gives the offset exactly."""
    estimator = OffsetEstimator()
    estimator.add(1_000, 601_000, 1_000)

    assert estimator.offset_ms == 600_000
    assert estimator.round_trip_ms == 0
    assert estimator.server_now_ms(2_000) == 602_000


def test_offset_median_of_three_fastest() -> None:
    """Of five samples the three fastest count, and their median is the offset."""
    estimator = OffsetEstimator()
    estimator.add(0, 1_000, 100)  # round trip 100, offset 950
    estimator.add(1_000, 2_000, 1_040)  # round trip 40, offset 980
    estimator.add(2_000, 3_000, 2_030)  # round trip 30, offset 985
    estimator.add(3_000, 4_000, 3_050)  # round trip 50, offset 975
    estimator.add(4_000, 9_000, 4_400)  # round trip 400, offset 4_800

    assert estimator.offset_ms == 980
    assert estimator.round_trip_ms == 30


def test_offset_two_samples_averages_them() -> None:
    """With fewer samples than `best`, the median of two is their mean."""
    estimator = OffsetEstimator()
    estimator.add(0, 1_000, 40)  # offset 980
    estimator.add(1_000, 2_000, 1_020)  # offset 990

    assert estimator.offset_ms == 985


def test_add_beyond_keep_forgets_oldest() -> None:
    """Only the last `keep` samples count, however fast an older one was."""
    estimator = OffsetEstimator(keep=3, best=1)
    estimator.add(0, 5_000, 2)  # the fastest, offset 4_999
    for start_ms in (1_000, 2_000, 3_000):
        estimator.add(start_ms, start_ms + 7_050, start_ms + 100)  # offset 7_000

    assert estimator.sample_count == 3
    assert estimator.offset_ms == 7_000
    assert estimator.round_trip_ms == 100


@pytest.mark.parametrize("count", [5, 10])
@pytest.mark.parametrize("skew_ms", SKEWS_MS)
def test_remaining_skewed_client_matches_server(skew_ms: int, count: int) -> None:
    """A client ten minutes off counts the same remaining time within 50 ms."""
    for seed in SEEDS:
        network = Network(skew_ms, random.Random(f"{skew_ms}/{count}/{seed}"))
        estimator = OffsetEstimator()
        exchanges = network.sync(estimator, count)

        error_ms = _remaining_error_ms(estimator, network)

        assert abs(error_ms) < TOLERANCE_MS, (seed, error_ms, exchanges)


@pytest.mark.parametrize("skew_ms", SKEWS_MS)
def test_remaining_with_stalled_exchanges_matches_server(skew_ms: int) -> None:
    """Two of five exchanges stalled one way by 300 ms do not move the estimate."""
    network = Network(skew_ms, random.Random(7))
    estimator = OffsetEstimator()
    for there_ms, back_ms in [(40, 60), (350, 30), (25, 70), (30, 330), (80, 20)]:
        exchange = network.exchange(there_ms, back_ms)
        estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)

    assert abs(_remaining_error_ms(estimator, network)) < TOLERANCE_MS


@settings(max_examples=300, deadline=None)
@given(
    skew_ms=st.integers(min_value=-10 * MINUTE_MS, max_value=10 * MINUTE_MS),
    delays_ms=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=0, max_value=500),
        ),
        min_size=1,
        max_size=15,
    ),
)
def test_offset_error_within_half_middle_fast_round_trip(
    skew_ms: int, delays_ms: list[tuple[int, int]]
) -> None:
    """The estimate is off by at most half the round trip of its middle sample."""
    network = Network(skew_ms, random.Random(0))
    estimator = OffsetEstimator()
    for there_ms, back_ms in delays_ms:
        exchange = network.exchange(there_ms, back_ms)
        estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)

    # The median of the fastest m samples lies among them once more than half of
    # them are within a bound; the (m // 2)-th fastest round trip gives that bound.
    kept = [there + back for there, back in delays_ms[-10:]]
    fastest = sorted(kept)[: min(3, len(kept))]
    bound_ms = fastest[len(fastest) // 2] / 2
    assert estimator.offset_ms is not None
    assert abs(estimator.offset_ms - -skew_ms) <= bound_ms


@settings(max_examples=300, deadline=None)
@given(
    skew_ms=st.integers(min_value=-10 * MINUTE_MS, max_value=10 * MINUTE_MS),
    delays_ms=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=0, max_value=500),
        ),
        min_size=1,
        max_size=15,
    ),
)
def test_offset_best_one_error_within_half_fastest_round_trip(
    skew_ms: int, delays_ms: list[tuple[int, int]]
) -> None:
    """Keeping only the fastest sample, the error is at most half its round trip."""
    network = Network(skew_ms, random.Random(0))
    estimator = OffsetEstimator(best=1)
    for there_ms, back_ms in delays_ms:
        exchange = network.exchange(there_ms, back_ms)
        estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)

    assert estimator.offset_ms is not None
    assert estimator.round_trip_ms is not None
    assert abs(estimator.offset_ms - -skew_ms) <= estimator.round_trip_ms / 2
