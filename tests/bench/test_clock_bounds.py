"""The clock simulation: each estimator does on fixed paths what theory says."""

from __future__ import annotations

from bench.clock_bounds import NetworkPath, simulate
from bench.report import _clock_bounds


def _p95_ms(result: dict[str, object], estimator: str, count: str) -> float:
    estimators = result["estimators"]
    assert isinstance(estimators, dict)
    return float(estimators[estimator][count]["p95"])


def test_a_fixed_symmetric_path_leaves_only_the_stamps_rounding() -> None:
    path = NetworkPath("fixed", (30.0, 30.0), (30.0, 30.0))
    result = simulate(path, clients=50, seed=1)
    for estimator in result["estimators"]:
        for count in ("1", "10", "20"):
            assert _p95_ms(result, estimator, count) <= 0.5


def test_a_fixed_asymmetric_path_misleads_all_but_the_one_told_the_ranges() -> None:
    # 20 ms there and 60 ms back: a midpoint is 20 ms off, whatever is averaged.
    path = NetworkPath("lopsided", (20.0, 20.0), (60.0, 60.0))
    result = simulate(path, clients=50, seed=1)
    for estimator in ("sessionclock", "mean of midpoints", "fastest round trip"):
        assert 19.5 <= _p95_ms(result, estimator, "10") <= 20.5
    assert _p95_ms(result, "told the delay ranges", "10") <= 0.5


def test_keeping_every_exchange_is_never_worse_than_keeping_ten() -> None:
    path = NetworkPath("jitter", (20.0, 80.0), (20.0, 80.0))
    result = simulate(path, clients=300, seed=3)
    assert _p95_ms(result, "sessionclock", "10") == _p95_ms(
        result, "sessionclock, every exchange", "10"
    )
    assert _p95_ms(result, "sessionclock, every exchange", "20") < _p95_ms(
        result, "sessionclock", "20"
    )


def test_stalls_leave_out_the_estimator_told_the_ranges() -> None:
    path = NetworkPath("stalls", (20.0, 80.0), (20.0, 80.0), stalls=True)
    result = simulate(path, clients=20, seed=1)
    assert "told the delay ranges" not in result["estimators"]


def test_the_report_names_each_path_with_its_goal() -> None:
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
