"""Polling fallback: requests per second of `GET …/ready`, and clients at 2 s each.

One sessionclock node on PostgreSQL serves `--sessions` sessions. First a closed
loop of `--concurrency` workers asks for random sessions' state as fast as the node
answers (the node's ceiling); then open loops offer the load of K clients polling
every `--interval-s` (K / interval requests per second, each sent on schedule
whatever the answers do) at growing K. A K is carried when the node answers every
request, keeps the offered rate, and its p99 stays within `--slo-ms`.

    python bench/polling.py --sessions 2000 --duration-s 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import SECRET_KEY, ServerProcess, server_env

from bench.common import (
    finish_profile,
    log,
    postgres_database,
    rss_kib,
    seed_postgres,
    session_row,
    sleep_until,
    start_profile,
    summary,
    top_frames,
)
from sessionclock.core.clock import SystemClock
from sessionclock.credentials import TokenIssuer

Target = tuple[str, dict[str, str]]


async def closed_loop(
    http: aiohttp.ClientSession,
    targets: list[Target],
    concurrency: int,
    duration_s: float,
) -> dict[str, Any]:
    """As many requests as the node answers, from a fixed number of workers."""
    latencies_ms: list[float] = []
    errors = 0
    end_s = time.perf_counter() + duration_s
    chooser = random.Random(1)

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < end_s:
            url, headers = chooser.choice(targets)
            started_s = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies_ms.append((time.perf_counter() - started_s) * 1000)

    begin_s = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    took_s = time.perf_counter() - begin_s
    return {
        "concurrency": concurrency,
        "requests_per_s": round(len(latencies_ms) / took_s, 1),
        "latency_ms": summary(latencies_ms),
        "errors": errors,
    }


async def open_loop(
    http: aiohttp.ClientSession,
    targets: list[Target],
    clients: int,
    interval_s: float,
    duration_s: float,
) -> dict[str, Any]:
    """The load of `clients` pollers, one request each per interval, on schedule."""
    rate_per_s = clients / interval_s
    total = int(rate_per_s * duration_s)
    latencies_ms: list[float] = []
    errors = 0

    async def one(target: Target) -> None:
        nonlocal errors
        started_s = time.perf_counter()
        try:
            async with http.get(target[0], headers=target[1]) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    return
        except aiohttp.ClientError:
            errors += 1
            return
        latencies_ms.append((time.perf_counter() - started_s) * 1000)

    begin_s = time.perf_counter()
    tasks = []
    for index in range(total):
        await sleep_until(begin_s + index / rate_per_s)
        tasks.append(asyncio.create_task(one(targets[index % len(targets)])))
    sent_s = time.perf_counter() - begin_s
    await asyncio.wait(tasks, timeout=30)
    return {
        "clients": clients,
        "offered_per_s": round(rate_per_s, 1),
        "sent_per_s": round(total / sent_s, 1),
        "latency_ms": summary(latencies_ms),
        "errors": errors + sum(1 for task in tasks if not task.done()),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sessionclock-bench-polling-"))
    async with postgres_database("polling") as database:
        now = int(time.time() * 1000)
        ids = [f"poll-{index}" for index in range(args.sessions)]
        await seed_postgres(
            database.dsn,
            [
                session_row(
                    session_id,
                    starts_at_ms=now + 600_000,
                    ends_at_ms=now + 4_200_000,
                    status="waiting",
                    created_at_ms=now,
                    lobby_lead_s=900,
                )
                for session_id in ids
            ],
        )
        server = ServerProcess(
            server_env(database.url, SESSIONCLOCK_LOG_LEVEL=args.log_level), workdir
        )
        server.start()
        try:
            issuer = TokenIssuer(SECRET_KEY, SystemClock())
            targets = [
                (
                    f"{server.base_url}/api/sessions/{session_id}/ready",
                    {
                        "Authorization": "Bearer "
                        + issuer.issue(f"c-{session_id}", 7200).token
                    },
                )
                for session_id in ids
            ]
            connector = aiohttp.TCPConnector(limit=args.connections)
            async with aiohttp.ClientSession(connector=connector) as http:
                await closed_loop(http, targets, 8, 2.0)  # warm the pools
                spy = None
                if args.profile is not None:
                    spy = start_profile(server.pid, args.duration_s, args.profile)
                ceiling = await closed_loop(
                    http, targets, args.concurrency, args.duration_s
                )
                finish_profile(spy)
                log(f"polling ceiling: {json.dumps(ceiling)}")
                # Fewer workers than the node's pool holds connections: the pool
                # never opens overflow connections, whatever the first loop did.
                within_pool = await closed_loop(
                    http, targets, args.pool_concurrency, args.duration_s
                )
                log(f"polling within the pool: {json.dumps(within_pool)}")
                steps = []
                for share in args.shares:
                    clients = int(ceiling["requests_per_s"] * args.interval_s * share)
                    step = await open_loop(
                        http, targets, clients, args.interval_s, args.duration_s
                    )
                    step["carried"] = (
                        step["errors"] == 0
                        and step["sent_per_s"] >= 0.98 * step["offered_per_s"]
                        and step["latency_ms"].get("p99", 1e9) <= args.slo_ms
                    )
                    log(f"polling step: {json.dumps(step)}")
                    steps.append(step)
            rss = rss_kib(server.pid)
        finally:
            server.stop()
    carried = [step["clients"] for step in steps if step["carried"]]
    return {
        "sessions": args.sessions,
        "interval_s": args.interval_s,
        "slo_ms": args.slo_ms,
        "ceiling": ceiling,
        "within_pool": within_pool,
        "steps": steps,
        "clients_carried": max(carried, default=0),
        "node_rss_kib": rss,
        "profile_top": [] if args.profile is None else top_frames(args.profile),
    }


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--pool-concurrency",
        type=int,
        default=12,
        help="workers of a second closed loop, fewer than the node's 20 connections",
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--interval-s", type=float, default=2.0)
    parser.add_argument("--slo-ms", type=float, default=250.0)
    parser.add_argument(
        "--shares",
        type=float,
        nargs="+",
        default=[0.5, 0.7, 0.85, 1.0],
        help="open-loop loads as shares of the closed-loop ceiling",
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--profile", type=Path, help="py-spy profile of the node")
    return parser


def main() -> None:
    print(json.dumps(uvloop.run(run(parser().parse_args())), indent=2))


if __name__ == "__main__":
    main()
