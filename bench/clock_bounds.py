"""What the exchanges allow: clock estimators simulated on the benchmark's paths.

The browser run (`clock_agreement.py`) measures sessionclock's estimator on two
paths. This simulation asks what any estimator could do there: it draws the same
delays (each direction from its own range, and on a third path one direction
stalled by 300 ms in a tenth of the exchanges), stamps the server's time floored to
the millisecond as the server does, and feeds the same exchanges to

- sessionclock's own `OffsetEstimator` (the middle of the intersection of the
  exchanges' offset bounds), keeping the last 10 exchanges as the clients do, and
  keeping every exchange;
- the mean of the exchanges' midpoints, which trusts every path to be symmetric;
- the midpoint of the fastest round trip, the simplest filter of NTP's kind;
- timesync's rule: the mean offset of the exchanges whose round trip is under the
  median plus one standard deviation;
- an estimator told the exact range of each direction's delay, which no client
  knows: a floor for what the exchanges hold, given the ranges.

No servers, no network: a few seconds of CPU.

    python bench/clock_bounds.py --clients 10000
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from sessionclock.core.clock_sync import OffsetEstimator, TimeSample

COUNTS = (1, 5, 10, 15, 20)
STALL_MS = 300.0
STALL_SHARE = 0.1


@dataclass(frozen=True)
class NetworkPath:
    name: str
    up_ms: tuple[float, float]
    down_ms: tuple[float, float]
    stalls: bool = False

    @property
    def half_asymmetry_ms(self) -> float:
        mean_up = sum(self.up_ms) / 2
        mean_down = sum(self.down_ms) / 2
        return abs(mean_down - mean_up) / 2


PATHS = (
    NetworkPath("asymmetric", (20.0, 40.0), (40.0, 80.0)),
    NetworkPath("symmetric", (20.0, 80.0), (20.0, 80.0)),
    NetworkPath("symmetric, stalls", (20.0, 80.0), (20.0, 80.0), stalls=True),
)

Estimate = Callable[[Sequence[TimeSample]], float]


def _midpoint(sample: TimeSample) -> float:
    return (sample.offset_low_ms + sample.offset_high_ms) / 2


def mean_of_midpoints(samples: Sequence[TimeSample]) -> float:
    return statistics.fmean(_midpoint(sample) for sample in samples)


def fastest_midpoint(samples: Sequence[TimeSample]) -> float:
    return _midpoint(min(samples, key=lambda sample: sample.round_trip_ms))


def timesync_rule(samples: Sequence[TimeSample]) -> float:
    trips = [sample.round_trip_ms for sample in samples]
    if len(trips) < 2:
        return _midpoint(samples[0])
    limit = statistics.median(trips) + statistics.stdev(trips)
    kept = [sample for sample in samples if sample.round_trip_ms < limit] or samples
    return mean_of_midpoints(kept)


def told_the_ranges(path: NetworkPath) -> Estimate:
    """The middle of what the exchanges allow once each direction's range is known."""

    def estimate(samples: Sequence[TimeSample]) -> float:
        low_ms, high_ms = -math.inf, math.inf
        for sample in samples:
            # The server read its clock `up` after t0 and `down` before t3.
            low_ms = max(
                low_ms,
                sample.server_ms - sample.t0_ms - path.up_ms[1],
                sample.server_ms - sample.t3_ms + path.down_ms[0],
            )
            high_ms = min(
                high_ms,
                sample.server_ms + 1 - sample.t0_ms - path.up_ms[0],
                sample.server_ms + 1 - sample.t3_ms + path.down_ms[1],
            )
        return (low_ms + high_ms) / 2

    return estimate


def _exchanges(
    path: NetworkPath, count: int, rng: random.Random
) -> tuple[float, list[TimeSample]]:
    """One client's true offset and its `count` exchanges, 50 ms apart."""
    offset_ms = rng.uniform(-600_000, 600_000)
    samples = []
    t0_ms = rng.uniform(0, 1_000_000)
    for _ in range(count):
        up_ms = rng.uniform(*path.up_ms)
        down_ms = rng.uniform(*path.down_ms)
        if path.stalls and rng.random() < STALL_SHARE:
            if rng.random() < 0.5:
                up_ms += STALL_MS
            else:
                down_ms += STALL_MS
        server_ms = math.floor(t0_ms + up_ms + offset_ms)
        t3_ms = t0_ms + up_ms + down_ms
        samples.append(TimeSample(t0_ms, server_ms, t3_ms))
        t0_ms = t3_ms + 50
    return offset_ms, samples


def simulate(path: NetworkPath, clients: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    estimators: dict[str, Estimate] = {
        "mean of midpoints": mean_of_midpoints,
        "fastest round trip": fastest_midpoint,
        "timesync's rule": timesync_rule,
    }
    if not path.stalls:
        estimators["told the delay ranges"] = told_the_ranges(path)
    errors: dict[str, dict[int, list[float]]] = {
        name: {count: [] for count in COUNTS}
        for name in ("sessionclock", "sessionclock, every exchange", *estimators)
    }
    for _ in range(clients):
        offset_ms, samples = _exchanges(path, max(COUNTS), rng)
        kept_ten, kept_all = OffsetEstimator(keep=10), OffsetEstimator(keep=max(COUNTS))
        for index, sample in enumerate(samples, start=1):
            for estimator in (kept_ten, kept_all):
                estimator.add(sample.t0_ms, sample.server_ms, sample.t3_ms)
            if index not in COUNTS:
                continue
            for name, kept in (
                ("sessionclock", kept_ten),
                ("sessionclock, every exchange", kept_all),
            ):
                assert kept.offset_ms is not None
                errors[name][index].append(abs(kept.offset_ms - offset_ms))
            for name, estimate in estimators.items():
                error_ms = abs(estimate(samples[:index]) - offset_ms)
                errors[name][index].append(error_ms)
    return {
        "up_ms": list(path.up_ms),
        "down_ms": list(path.down_ms),
        "stalls": path.stalls,
        "half_asymmetry_ms": path.half_asymmetry_ms,
        "estimators": {
            name: {
                str(count): {
                    "p50": round(percentile(values, 0.5), 1),
                    "p95": round(percentile(values, 0.95), 1),
                }
                for count, values in by_count.items()
            }
            for name, by_count in errors.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="per path")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = {
        "clients": args.clients,
        "seed": args.seed,
        "stall_ms": STALL_MS,
        "stall_share": STALL_SHARE,
        "paths": {path.name: simulate(path, args.clients, args.seed) for path in PATHS},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
