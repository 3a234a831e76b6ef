"""What the exchanges allow: clock estimators simulated on the benchmark's paths.

The browser run (`clock_agreement.py`) measures sessionclock's estimator on two
paths. This simulation asks what any estimator could do there: it draws the same
delays (each direction from its own range, and on a third path one direction
stalled by 300 ms in a tenth of the exchanges), stamps the server's time floored to
the millisecond as the server does, and feeds the same exchanges to

- sessionclock's own `OffsetEstimator` as the clients use it (the middle of the
  intersection of the last 30 exchanges' offset bounds, the older ones widened by
  the drift their age allows);
- the mean of the exchanges' midpoints, which trusts every path to be symmetric;
- the midpoint of the fastest round trip, the simplest filter of NTP's kind;
- timesync's rule: the mean offset of the exchanges whose round trip is under the
  median plus one standard deviation;
- an estimator told the exact range of each direction's delay, which no client
  knows: a floor for what the exchanges hold, given the ranges.

Then it follows one client through a five-minute lobby on the clients' own schedule
(`CLOCK_CONNECT_EXCHANGES` when it connects, `CLOCK_RESYNC_EXCHANGES` every
`CLOCK_RESYNC_INTERVAL_S`) on the symmetric path, its clock drifting from the
server's by 0 to 100 parts per million, and records the error just after the first
burst, around the first resync and before the last one; once with the estimator as
shipped and once without its drift allowance.

No servers, no network: under a minute of CPU.

    python bench/clock_bounds.py --clients 10000 --lobby-clients 2000
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
from sessionclock.constants import (
    CLOCK_CONNECT_EXCHANGES,
    CLOCK_DRIFT_PPM,
    CLOCK_RESYNC_EXCHANGES,
    CLOCK_RESYNC_INTERVAL_S,
)
from sessionclock.core.clock_sync import OffsetEstimator, TimeSample

COUNTS = (1, 5, 10, 15, 20)
STALL_MS = 300.0
STALL_SHARE = 0.1
PAUSE_MS = 50.0

# The lobby: how long it is followed, when its error is read (seconds after the
# client connected: after the first burst, just before and after the first resync,
# just before the last one), and how fast the client's clock drifts. A run of 20
# frames 50 ms apart has its last reply within 1.15 s on the symmetric path.
LOBBY_S = 300
LOBBY_PROBES_S = (1.5, 59.0, 61.5, 299.0)
DRIFTS_PPM = (0.0, 20.0, 50.0, 100.0)


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
        t0_ms = t3_ms + PAUSE_MS
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
        name: {count: [] for count in COUNTS} for name in ("sessionclock", *estimators)
    }
    for _ in range(clients):
        offset_ms, samples = _exchanges(path, max(COUNTS), rng)
        ours = OffsetEstimator()
        for index, sample in enumerate(samples, start=1):
            ours.add(sample.t0_ms, sample.server_ms, sample.t3_ms)
            if index not in COUNTS:
                continue
            assert ours.offset_ms is not None
            errors["sessionclock"][index].append(abs(ours.offset_ms - offset_ms))
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


def _lobby_errors(
    path: NetworkPath, drift_ppm: float, estimator: OffsetEstimator, rng: random.Random
) -> list[float]:
    """One client through a lobby: its error at each of `LOBBY_PROBES_S`."""
    # The client's clock runs `drift_ppm` fast (or slow) from a random skew; the
    # server's is true time. Both in ms from the moment the client connected.
    rate = 1 + drift_ppm / 1_000_000 * rng.choice((-1, 1))
    skew_ms = rng.uniform(-600_000, 600_000)

    def client_ms(true_ms: float) -> float:
        return true_ms * rate + skew_ms

    # As on a socket: a run sends a `time` frame every PAUSE_MS without waiting for
    # the replies, which the client takes in as they arrive.
    replies: list[tuple[float, TimeSample]] = []
    resync_ms = CLOCK_RESYNC_INTERVAL_S * 1000
    for start_ms in range(0, LOBBY_S * 1000, resync_ms):
        count = CLOCK_RESYNC_EXCHANGES if start_ms else CLOCK_CONNECT_EXCHANGES
        for index in range(count):
            sent_ms = start_ms + index * PAUSE_MS
            stamped_ms = sent_ms + rng.uniform(*path.up_ms)
            received_ms = stamped_ms + rng.uniform(*path.down_ms)
            sample = TimeSample(
                client_ms(sent_ms), math.floor(stamped_ms), client_ms(received_ms)
            )
            replies.append((received_ms, sample))
    replies.sort(key=lambda reply: reply[0])

    errors: list[float] = []
    probes_ms = iter(probe_s * 1000 for probe_s in LOBBY_PROBES_S)
    probe_ms = next(probes_ms)
    for received_ms, sample in replies:
        while probe_ms < received_ms:
            errors.append(_error_at(estimator, client_ms, probe_ms))
            probe_ms = next(probes_ms, math.inf)
        estimator.add(sample.t0_ms, sample.server_ms, sample.t3_ms)
    while math.isfinite(probe_ms):
        errors.append(_error_at(estimator, client_ms, probe_ms))
        probe_ms = next(probes_ms, math.inf)
    return errors


def _error_at(
    estimator: OffsetEstimator, client_ms: Callable[[float], float], true_ms: float
) -> float:
    return abs(estimator.server_now_ms(client_ms(true_ms)) - true_ms)


def simulate_lobby(
    path: NetworkPath,
    clients: int,
    seed: int,
    drifts_ppm: Sequence[float] = DRIFTS_PPM,
) -> dict[str, Any]:
    """The error over a lobby, by clock drift, with and without the drift allowance."""
    rows: dict[str, dict[str, float]] = {}
    for drift_ppm in drifts_ppm:
        for name, allowance_ppm in (
            ("sessionclock", CLOCK_DRIFT_PPM),
            ("without the drift allowance", 0.0),
        ):
            # The same clients and delays for both estimators.
            rng = random.Random(f"{seed}/{drift_ppm}")
            by_probe: list[list[float]] = [[] for _ in LOBBY_PROBES_S]
            for _ in range(clients):
                estimator = OffsetEstimator(drift_ppm=allowance_ppm)
                errors = _lobby_errors(path, drift_ppm, estimator, rng)
                for values, error_ms in zip(by_probe, errors, strict=True):
                    values.append(error_ms)
            rows[f"{drift_ppm:g} ppm / {name}"] = {
                f"{probe_s:g}": round(percentile(values, 0.95), 1)
                for probe_s, values in zip(LOBBY_PROBES_S, by_probe, strict=True)
            }
    return {
        "path": path.name,
        "up_ms": list(path.up_ms),
        "down_ms": list(path.down_ms),
        "clients": clients,
        "connect_exchanges": CLOCK_CONNECT_EXCHANGES,
        "resync_exchanges": CLOCK_RESYNC_EXCHANGES,
        "resync_interval_s": CLOCK_RESYNC_INTERVAL_S,
        "probes_s": list(LOBBY_PROBES_S),
        "p95_ms": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10_000, help="per path")
    parser.add_argument(
        "--lobby-clients", type=int, default=2_000, help="per drift, in the lobby"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = {
        "clients": args.clients,
        "seed": args.seed,
        "stall_ms": STALL_MS,
        "stall_share": STALL_SHARE,
        "paths": {path.name: simulate(path, args.clients, args.seed) for path in PATHS},
        "lobby": simulate_lobby(PATHS[1], args.lobby_clients, args.seed),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
