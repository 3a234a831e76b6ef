"""Push latency and memory per socket: N sessions, 2N sockets, ready marks at a rate.

Every session's client socket is held on node A and its companion socket on node
B (with two nodes); the load generator toggles each client's ready mark through
node A's HTTP API at a fixed rate and times each mark from the moment the request
is sent to the moment the companion's socket on node B holds the new snapshot: the
HTTP call, the database write, the bus hop between nodes and the push.

Run from the repository root (PostgreSQL must run locally; the benchmark starts
its own Redis and its own server processes, on loopback, and stops them):

    .venv/bin/python bench/push_latency.py --sessions 2000 --rate 200 --duration-s 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import API_KEY, SECRET_KEY, ServerProcess, server_env
from tests.realtime.conftest import RedisServer

from sessionclock.client import SessionSocket
from sessionclock.core.clock import SystemClock, to_iso
from sessionclock.credentials import TokenIssuer

POSTGRES_ADMIN_URL = os.environ.get(
    "SESSIONCLOCK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PLATFORM = {"Authorization": f"Bearer {API_KEY}"}
OPEN_PER_S = 400


@dataclass
class Pair:
    """One participant who toggles its mark through one node, watched on the other."""

    session_id: str
    marker_token: str
    marker_url: str
    watcher: SessionSocket
    ready: bool = False


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def server_side_ready(base_url: str) -> str:
    """The node's own histogram of POST …/ready durations, as cumulative counts."""
    text = httpx.get(f"{base_url}/metrics").text
    buckets = []
    for line in text.splitlines():
        if (
            line.startswith("sessionclock_http_request_duration_seconds_bucket")
            and 'route="/api/sessions/{session_id}/ready"' in line
            and 'method="POST"' in line
            and 'status="200"' in line
        ):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append(f"<={bound}s:{int(float(line.rsplit(' ', 1)[1]))}")
    return " ".join(buckets)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def create_sessions(base_url: str, count: int) -> list[str]:
    now_ms = SystemClock().now_ms()
    ids = [f"bench-{index}" for index in range(count)]
    semaphore = asyncio.Semaphore(32)

    async def create(http: httpx.AsyncClient, session_id: str) -> None:
        body = {
            "id": session_id,
            "client_id": f"c-{session_id}",
            "companion_id": f"p-{session_id}",
            "starts_at": to_iso(now_ms + 600_000),
            "duration_s": 3600,
            "lobby_lead_s": 900,
        }
        async with semaphore:
            response = await http.post("/api/sessions", json=body, headers=PLATFORM)
            response.raise_for_status()

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await asyncio.gather(*(create(http, session_id) for session_id in ids))
    return ids


async def open_sockets(
    url: str, session_ids: list[str], prefix: str, issuer: TokenIssuer
) -> list[SessionSocket]:
    semaphore = asyncio.Semaphore(64)
    start = time.perf_counter()

    async def one(index: int, session_id: str) -> SessionSocket:
        # Participants arrive over seconds, not all in one instant: the server's
        # per-connection pings would otherwise fire in one synchronized burst.
        await asyncio.sleep(max(0.0, start + index / OPEN_PER_S - time.perf_counter()))
        async with semaphore:
            token = issuer.issue(f"{prefix}-{session_id}", 7200).token
            # Browsers send no pings; the server's pings are the heartbeat.
            socket = await SessionSocket.connect(
                url, session_id, token, ping_interval_s=None
            )
            await socket.next_snapshot()
            return socket

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(session_ids))))


async def measure(
    pairs: list[Pair], rate: float, duration_s: float, timeline_wanted: bool
) -> list[float]:
    """Toggle client marks at `rate` per second; latency to the companion's socket."""
    latencies_ms: list[float] = []
    http_ms: list[float] = []
    timeline: list[tuple[float, float]] = []
    begin = time.perf_counter()
    missed: list[str] = []
    failures = 0
    interval_s = 1 / rate
    total = int(rate * duration_s)

    async def one(http: aiohttp.ClientSession, pair: Pair) -> None:
        nonlocal failures
        pair.ready = not pair.ready
        started = time.perf_counter()
        async with http.post(
            f"{pair.marker_url}/api/sessions/{pair.session_id}/ready",
            json={"ready": pair.ready},
            headers={"Authorization": f"Bearer {pair.marker_token}"},
        ) as response:
            if response.status != 200:
                failures += 1
                return
            version = (await response.json())["version"]
        http_ms.append((time.perf_counter() - started) * 1000)
        try:
            while pair.watcher.version < version:
                await pair.watcher.next_snapshot(timeout_s=10)
        except TimeoutError:
            missed.append(pair.session_id)
            return
        latencies_ms.append((time.perf_counter() - started) * 1000)
        timeline.append((started - begin, latencies_ms[-1]))

    # aiohttp, not httpx: httpx's pool spends its time matching queued requests to
    # connections and became the bottleneck of this very measurement.
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = []
        start = time.perf_counter()
        for index in range(total):
            # Open loop: marks leave on schedule whatever the answers do.
            delay_s = start + index * interval_s - time.perf_counter()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            tasks.append(asyncio.create_task(one(http, pairs[index % len(pairs)])))
        await asyncio.gather(*tasks)
    if failures:
        print(f"  {failures} marks failed", file=sys.stderr)
    if missed:
        print(f"  {len(missed)} pushes missed, e.g. {missed[:5]}", file=sys.stderr)
    if timeline_wanted:
        for second in range(int(duration_s)):
            window = [ms for at, ms in timeline if second <= at < second + 1]
            if window:
                print(
                    f"  t={second:3d}s p50={statistics.median(window):7.1f} "
                    f"max={max(window):7.1f}",
                    file=sys.stderr,
                )
    print(
        f"  HTTP answer alone: p50 {statistics.median(http_ms):.1f} ms, "
        f"p99 {percentile(http_ms, 0.99):.1f} ms",
        file=sys.stderr,
    )
    return latencies_ms


async def run(args: argparse.Namespace) -> dict[str, object]:
    database = f"sessionclock_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{database}"')
    database_url = (
        POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace(
            "postgresql://", "postgresql+asyncpg://"
        )
        + f"/{database}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="sessionclock-bench-"))
    print(f"  logs in {workdir}", file=sys.stderr)
    redis = RedisServer(workdir) if args.nodes == 2 else None
    servers: list[ServerProcess] = []
    sockets: list[SessionSocket] = []
    try:
        if redis is not None:
            redis.start()
        env = server_env(
            database_url,
            None if redis is None else redis.url,
            SESSIONCLOCK_LOG_LEVEL=args.log_level,
        )
        for name in ["a", "b"][: args.nodes]:
            server = ServerProcess({**env, "SESSIONCLOCK_NODE_NAME": name}, workdir)
            server.start()
            servers.append(server)
        node_a, node_b = servers[0], servers[-1]

        session_ids = await create_sessions(node_a.base_url, args.sessions)
        await asyncio.sleep(1)
        rss_before = {server.base_url: rss_kib(server.pid) for server in servers}

        issuer = TokenIssuer(SECRET_KEY, SystemClock())
        clients = await open_sockets(node_a.base_url, session_ids, "c", issuer)
        watchers = await open_sockets(node_b.base_url, session_ids, "p", issuer)
        sockets = clients + watchers
        await asyncio.sleep(3)
        rss_after = {server.base_url: rss_kib(server.pid) for server in servers}
        added_kib = sum(rss_after[url] - rss_before[url] for url in rss_after)
        per_socket_kib = added_kib / len(sockets)

        # Even sessions: the client marks through node A, the companion's socket on
        # node B watches. Odd ones: the companion marks through B, watched on A.
        pairs = []
        for index, session_id in enumerate(session_ids):
            if index % 2 == 0:
                marker = issuer.issue(f"c-{session_id}", 7200).token
                pairs.append(Pair(session_id, marker, node_a.base_url, watchers[index]))
            else:
                marker = issuer.issue(f"p-{session_id}", 7200).token
                pairs.append(Pair(session_id, marker, node_b.base_url, clients[index]))
        latencies_ms = await measure(pairs, args.rate, args.duration_s, args.timeline)
        for server in servers:
            print(
                f"  {server.base_url}: {server_side_ready(server.base_url)}",
                file=sys.stderr,
            )
        return {
            "nodes": args.nodes,
            "sessions": args.sessions,
            "sockets": len(sockets),
            "rate_per_s": args.rate,
            "marks": len(latencies_ms),
            "p50_ms": round(statistics.median(latencies_ms), 2),
            "p99_ms": round(percentile(latencies_ms, 0.99), 2),
            "max_ms": round(max(latencies_ms), 2),
            "rss_per_socket_kib": round(per_socket_kib, 1),
            "rss_nodes_kib": rss_after,
            "machine": (
                f"{platform.machine()}, {os.cpu_count()} cores, "
                f"Python {platform.python_version()}"
            ),
        }
    finally:
        await asyncio.gather(
            *(socket.close() for socket in sockets), return_exceptions=True
        )
        for server in servers:
            server.stop()
        if redis is not None:
            redis.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument(
        "--rate", type=float, default=200.0, help="ready marks per second"
    )
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--nodes", type=int, choices=[1, 2], default=2)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--timeline", action="store_true", help="print p50 and max for every second"
    )
    args = parser.parse_args()

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
