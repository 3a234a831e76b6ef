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

# The symmetric but jittery path: each way 20 to 80 ms, drawn independently.
JITTER_SEEDS = range(400)


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

    def delays_ms(
        self,
        there_range_ms: tuple[float, float] = (20, 80),
        back_range_ms: tuple[float, float] = (20, 80),
    ) -> tuple[float, float]:
        there_ms = self.rng.uniform(*there_range_ms)
        back_ms = self.rng.uniform(*back_range_ms)

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

        When half of them or more stall, the faster half holds stalled ones too, and
        their 150 ms of asymmetry pulls the estimate.
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


@pytest.mark.parametrize("keep", [0, -1])
def test_init_bad_keep_raises(keep: int) -> None:
    """The estimator keeps at least one sample."""
    with pytest.raises(ValueError, match=r"expected keep >= 1"):
        OffsetEstimator(keep=keep)


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


def test_offset_weighted_mean_of_faster_half() -> None:
    """Of five samples the three fastest count, weighted by 1 / (round trip + 1)²."""
    estimator = OffsetEstimator()
    estimator.add(0, 1_000, 100)  # round trip 100, offset 950
    estimator.add(1_000, 2_000, 1_040)  # round trip 40, offset 980
    estimator.add(2_000, 3_000, 2_030)  # round trip 30, offset 985
    estimator.add(3_000, 4_000, 3_050)  # round trip 50, offset 975
    estimator.add(4_000, 9_000, 4_400)  # round trip 400, offset 4_800

    weights = [1 / 31**2, 1 / 41**2, 1 / 51**2]
    expected_ms = (985 * weights[0] + 980 * weights[1] + 975 * weights[2]) / sum(
        weights
    )
    assert estimator.offset_ms == pytest.approx(expected_ms, abs=1e-9)
    assert estimator.offset_ms == pytest.approx(981.624, abs=1e-3)
    assert estimator.round_trip_ms == 30


def test_offset_two_samples_takes_faster() -> None:
    """Of two samples, the faster half is the faster one alone."""
    estimator = OffsetEstimator()
    estimator.add(0, 1_000, 40)  # offset 980
    estimator.add(1_000, 2_000, 1_020)  # offset 990

    assert estimator.offset_ms == 990


def test_offset_equal_offsets_is_exact() -> None:
    """Samples that agree give their offset exactly, whatever their round trips."""
    estimator = OffsetEstimator()
    for start_ms, round_trip_ms in [(0, 37), (1_000, 52), (2_000, 41), (3_000, 66)]:
        middle_ms = start_ms + round_trip_ms / 2
        estimator.add(start_ms, middle_ms + 600_123.25, start_ms + round_trip_ms)

    assert estimator.offset_ms == 600_123.25


def test_add_beyond_keep_forgets_oldest() -> None:
    """Only the last `keep` samples count, however fast an older one was."""
    estimator = OffsetEstimator(keep=3)
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


@pytest.mark.parametrize("skew_ms", SKEWS_MS)
def test_remaining_symmetric_jitter_averages_out(skew_ms: int) -> None:
    """On a symmetric path, the errors of equally fast samples cancel out."""
    network = Network(skew_ms, random.Random(0))
    estimator = OffsetEstimator()

    # Five round trips of 60 ms, off by +8, -8, +7, -7 and +6 ms, then five slower
    # ones all off by +20 ms: the median of the three fastest would be 7 ms off.
    fast_ms = [(38, 22), (22, 38), (37, 23), (23, 37), (36, 24)]
    slow_ms = [(70, 30)] * 5
    for there_ms, back_ms in fast_ms + slow_ms:
        exchange = network.exchange(there_ms, back_ms)
        estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)

    assert estimator.offset_ms == pytest.approx(-skew_ms + 1.2, abs=1e-6)
    assert _remaining_error_ms(estimator, network) == pytest.approx(-1.2, abs=1e-3)


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


@pytest.mark.parametrize(("count", "p95_limit_ms"), [(5, 16), (10, 12)])
def test_remaining_symmetric_jitter_p95_within_limit(
    count: int, p95_limit_ms: float
) -> None:
    """With 20 to 80 ms each way, 95 % of clients are within 16 or 12 ms."""
    errors_ms = []
    for skew_ms in SKEWS_MS:
        for seed in JITTER_SEEDS:
            rng = random.Random(f"jitter/{skew_ms}/{seed}")
            network = Network(skew_ms, rng, stalls_left=0)
            estimator = OffsetEstimator()
            for _ in range(count):
                exchange = network.exchange(*network.delays_ms())
                estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)
            errors_ms.append(abs(_remaining_error_ms(estimator, network)))

    assert _p95(errors_ms) <= p95_limit_ms


def test_remaining_asymmetric_path_p95_within_goal() -> None:
    """With 20 to 40 ms there and 40 to 80 back, 95 % are within 5 ms + 15 ms."""
    errors_ms = []
    for skew_ms in SKEWS_MS:
        for seed in JITTER_SEEDS:
            rng = random.Random(f"asym/{skew_ms}/{seed}")
            network = Network(skew_ms, rng, stalls_left=0)
            estimator = OffsetEstimator()
            for _ in range(10):
                delays_ms = network.delays_ms((20, 40), (40, 80))
                exchange = network.exchange(*delays_ms)
                estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)
            errors_ms.append(abs(_remaining_error_ms(estimator, network)))

    assert _p95(errors_ms) <= 5 + 15


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
def test_offset_error_within_half_slowest_used_round_trip(
    skew_ms: int, delays_ms: list[tuple[int, int]]
) -> None:
    """The estimate is off by at most half the slowest round trip it averages."""
    network = Network(skew_ms, random.Random(0))
    estimator = OffsetEstimator()
    for there_ms, back_ms in delays_ms:
        exchange = network.exchange(there_ms, back_ms)
        estimator.add(exchange.t0_ms, exchange.server_ms, exchange.t3_ms)

    # Each of the faster half is within half its round trip, and a weighted mean
    # lies between them; 1e-6 ms leaves room for rounding in the sums.
    kept = sorted(there + back for there, back in delays_ms[-10:])
    bound_ms = kept[(len(kept) + 1) // 2 - 1] / 2
    assert estimator.offset_ms is not None
    assert abs(estimator.offset_ms - -skew_ms) <= bound_ms + 1e-6
