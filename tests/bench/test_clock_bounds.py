"""The clock simulation: each estimator does on fixed paths what theory says."""

from __future__ import annotations

from bench.clock_bounds import PATHS, NetworkPath, simulate, simulate_lobby
from bench.report import _clock_bounds

SYMMETRIC = PATHS[1]


def _p95_ms(result: dict[str, object], estimator: str, count: str) -> float:
    estimators = result["estimators"]
    assert isinstance(estimators, dict)
    return float(estimators[estimator][count]["p95"])


def test_a_fixed_symmetric_path_leaves_only_the_stamps_rounding() -> None:
    """With the same delay every way, every estimator is off by the stamp's rounding."""
    path = NetworkPath("fixed", (30.0, 30.0), (30.0, 30.0))
    result = simulate(path, clients=50, seed=1)
    for estimator in result["estimators"]:
        for count in ("1", "10", "20"):
            assert _p95_ms(result, estimator, count) <= 0.5


def test_a_fixed_asymmetric_path_misleads_all_but_the_one_told_the_ranges() -> None:
    """A path slower one way misleads by half the difference, unless told the ranges."""
    # 20 ms there and 60 ms back: a midpoint is 20 ms off, whatever is averaged.
    path = NetworkPath("lopsided", (20.0, 20.0), (60.0, 60.0))
    result = simulate(path, clients=50, seed=1)
    for estimator in ("sessionclock", "mean of midpoints", "fastest round trip"):
        assert 19.5 <= _p95_ms(result, estimator, "10") <= 20.5
    assert _p95_ms(result, "told the delay ranges", "10") <= 0.5


def test_more_exchanges_narrow_the_symmetric_paths_error() -> None:
    """On the jittery symmetric path 20 exchanges are closer than 10, and 10 than 5."""
    result = simulate(SYMMETRIC, clients=300, seed=3)
    after = [_p95_ms(result, "sessionclock", count) for count in ("5", "10", "20")]
    assert after == sorted(after, reverse=True)
    assert after[-1] < 6


def _lobby_p95_ms(drift_ppm: float, estimator: str, probe_s: str) -> float:
    result = simulate_lobby(SYMMETRIC, clients=300, seed=5, drifts_ppm=[drift_ppm])
    return float(result["p95_ms"][f"{drift_ppm:g} ppm / {estimator}"][probe_s])


def test_lobby_connect_burst_meets_the_goal_at_any_drift() -> None:
    """A second and a half after connecting, 95 % of clients are within 5 ms."""
    for drift_ppm in (0.0, 100.0):
        assert _lobby_p95_ms(drift_ppm, "sessionclock", "1.5") <= 5


def test_lobby_drift_allowance_helps_a_fast_drifting_clock() -> None:
    """At 100 ppm, widening old exchanges leaves a smaller error before a resync."""
    with_allowance = _lobby_p95_ms(100.0, "sessionclock", "299")
    without = _lobby_p95_ms(100.0, "without the drift allowance", "299")
    assert with_allowance < without


def test_lobby_drift_allowance_costs_a_steady_clock_a_little() -> None:
    """With no drift at all, widening old exchanges only loosens them."""
    with_allowance = _lobby_p95_ms(0.0, "sessionclock", "299")
    without = _lobby_p95_ms(0.0, "without the drift allowance", "299")
    assert without <= with_allowance < without + 2


def test_stalls_leave_out_the_estimator_told_the_ranges() -> None:
    """With stalls no fixed range holds, so no estimator is told one."""
    path = NetworkPath("stalls", (20.0, 80.0), (20.0, 80.0), stalls=True)
    result = simulate(path, clients=20, seed=1)
    assert "told the delay ranges" not in result["estimators"]


def test_the_report_names_each_path_with_its_goal() -> None:
    """The report's table gives each path its own goal: 5 ms plus half the asymmetry."""
    path = NetworkPath("lopsided", (20.0, 20.0), (60.0, 60.0))
    run = {
        "name": "clock-bounds",
        "clients": 10,
        "seed": 1,
        "stall_ms": 300.0,
        "stall_share": 0.1,
        "paths": {"lopsided": simulate(path, clients=10, seed=1)},
    }
    table = _clock_bounds(run)
    # Half of 40 ms of asymmetry plus 5 ms.
    assert "| lopsided | 25 ms | sessionclock |" in table
    assert "told the delay ranges" in table
