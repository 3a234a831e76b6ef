"""Push latency and memory per socket: N sessions, 2N sockets, ready marks at a rate.

Every session's client socket is held on node A and its companion socket on node
B (with two nodes). The load generator toggles one participant's ready mark through
that participant's node at a fixed rate (the client's through A in even sessions,
the companion's through B in odd ones) and times each mark from the moment the
request is sent to the moment the new snapshot arrives at the other participant's
socket: the HTTP call, the database write, the bus hop between nodes and the push.

Run from the repository root (PostgreSQL must run locally; the benchmark starts
its own Redis and its own server processes, on loopback, and stops them):

    .venv/bin/python bench/push_latency.py --sessions 2000 --rate 200 --duration-s 30
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import SECRET_KEY, ServerProcess, free_port, server_env
from tests.realtime.conftest import RedisServer

from bench.common import (
    ChildProcess,
    Database,
    finish_profile,
    machine,
    percentile,
    postgres_database,
    raise_file_limit,
    rss_kib,
    seed_postgres,
    session_row,
    start_profile,
    summary,
    top_frames,
)
from bench.peers.socketio_client import SocketIOSocket
from sessionclock.client import SessionSocket
from sessionclock.core.clock import SystemClock
from sessionclock.credentials import TokenIssuer

OPEN_PER_S = 400
SYSTEMS = ("sessionclock", "socketio")
STAGES_PROBE = Path(__file__).parent / "stages"


class Watcher(Protocol):
    """A participant's socket as the measurement sees it, whatever the server."""

    version: int
    received_s: float
    """`time.perf_counter()` when the snapshot last returned reached the socket."""

    async def next_snapshot(self, timeout_s: float = 10) -> object: ...

    async def close(self) -> None: ...


@dataclass
class Pair:
    """One participant who toggles its mark through one node, watched on the other."""

    session_id: str
    marker_token: str
    marker_url: str
    watcher: Watcher
    ready: bool = False


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


async def seed_sessions(dsn: str, count: int) -> list[str]:
    """Sessions whose lobby is open, written straight into the migrated database."""
    now = int(time.time() * 1000)
    ids = [f"bench-{index}" for index in range(count)]
    rows = [
        session_row(
            session_id,
            starts_at_ms=now + 600_000,
            ends_at_ms=now + 4_200_000,
            status="waiting",
            created_at_ms=now,
            lobby_lead_s=900,
        )
        for session_id in ids
    ]
    await seed_postgres(dsn, rows)
    return ids


async def open_sockets(
    system: str, url: str, session_ids: list[str], prefix: str, issuer: TokenIssuer
) -> list[Watcher]:
    semaphore = asyncio.Semaphore(64)
    start = time.perf_counter()

    async def one(index: int, session_id: str) -> Watcher:
        # Participants arrive over seconds, not all in one instant: the server's
        # per-connection pings would otherwise fire in one synchronized burst.
        await asyncio.sleep(max(0.0, start + index / OPEN_PER_S - time.perf_counter()))
        async with semaphore:
            token = issuer.issue(f"{prefix}-{session_id}", 7200).token
            socket: Watcher
            if system == "socketio":
                socket = await SocketIOSocket.connect(url, session_id, token)
            else:
                # Browsers send no pings; the server's pings are the heartbeat.
                socket = await SessionSocket.connect(
                    url, session_id, token, ping_interval_s=None
                )
            await socket.next_snapshot()
            return socket

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(session_ids))))


@dataclass
class Measured:
    """What one measurement found: latencies, misses, and each second's p50 and max."""

    latencies_ms: list[float]
    missed: int
    per_second: list[tuple[int, float, float]]
    http_ms: dict[str, float | int]


async def measure(
    pairs: list[Pair], rate: float, duration_s: float, timeline_wanted: bool
) -> Measured:
    """Toggle marks at `rate` per second; latency to the other participant's socket."""
    latencies_ms: list[float] = []
    http_ms: list[float] = []
    timeline: list[tuple[float, float]] = []
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
        # When the snapshot reached the socket, which may be before the answer did.
        latencies_ms.append((pair.watcher.received_s - started) * 1000)
        timeline.append((started - begin, latencies_ms[-1]))

    # aiohttp, not httpx: httpx's pool spends its time matching queued requests to
    # connections and became the bottleneck of this very measurement.
    connector = aiohttp.TCPConnector(limit=64)
    # The load generator holds every socket: keep them out of its collector's full
    # passes, which would otherwise pause it for hundreds of milliseconds and be
    # counted as the system's latency.
    gc.collect()
    gc.freeze()
    async with aiohttp.ClientSession(connector=connector) as http:
        # Only the marks in flight are held: gathering thousands of finished
        # tasks at the end would stall the loop under the last marks' feet.
        in_flight: set[asyncio.Task[None]] = set()
        start = begin = time.perf_counter()
        for index in range(total):
            # Open loop: marks leave on schedule whatever the answers do.
            delay_s = start + index * interval_s - time.perf_counter()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            task = asyncio.create_task(one(http, pairs[index % len(pairs)]))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    gc.unfreeze()
    if failures:
        print(f"  {failures} marks failed", file=sys.stderr)
    if missed:
        print(f"  {len(missed)} pushes missed, e.g. {missed[:5]}", file=sys.stderr)
    per_second = []
    for second in range(int(duration_s)):
        window = [ms for at, ms in timeline if second <= at < second + 1]
        if window:
            per_second.append(
                (second, round(statistics.median(window), 1), round(max(window), 1))
            )
            if timeline_wanted:
                print(
                    f"  t={second:3d}s p50={per_second[-1][1]:7.1f} "
                    f"max={per_second[-1][2]:7.1f}",
                    file=sys.stderr,
                )
    worst = sorted(timeline, key=lambda mark: -mark[1])[:5]
    print(
        "  slowest marks: "
        + ", ".join(f"{ms:.0f} ms at t={at:.2f}s" for at, ms in worst),
        file=sys.stderr,
    )
    print(
        f"  HTTP answer alone: p50 {statistics.median(http_ms):.1f} ms, "
        f"p99 {percentile(http_ms, 0.99):.1f} ms",
        file=sys.stderr,
    )
    return Measured(latencies_ms, len(missed) + failures, per_second, summary(http_ms))


async def run(args: argparse.Namespace) -> dict[str, object]:
    """One run of the job on sessionclock or on the Socket.IO peer."""
    async with postgres_database("push") as database:
        return await _run_on(args, database)


async def _run_on(args: argparse.Namespace, database: Database) -> dict[str, object]:
    workdir = Path(tempfile.mkdtemp(prefix="sessionclock-bench-"))
    print(f"  logs in {workdir}", file=sys.stderr)
    session_ids = await seed_sessions(database.dsn, args.sessions)
    redis = RedisServer(workdir) if args.nodes == 2 else None
    servers: list[ServerProcess | ChildProcess] = []
    urls: list[str] = []
    sockets: list[Watcher] = []
    try:
        if redis is not None:
            redis.start()
        for name in ["a", "b"][: args.nodes]:
            server, url = _node(args.system, name, database, redis, workdir, args)
            server.start()
            servers.append(server)
            urls.append(url)
        url_a, url_b = urls[0], urls[-1]
        await asyncio.sleep(1)
        rss_before = [rss_kib(server.pid) for server in servers]

        issuer = TokenIssuer(SECRET_KEY, SystemClock())
        clients = await open_sockets(args.system, url_a, session_ids, "c", issuer)
        watchers = await open_sockets(args.system, url_b, session_ids, "p", issuer)
        sockets = clients + watchers
        await asyncio.sleep(3)
        rss_after = [rss_kib(server.pid) for server in servers]
        added_kib = sum(rss_after) - sum(rss_before)
        per_socket_kib = added_kib / len(sockets)

        # Even sessions: the client marks through node A, the companion's socket on
        # node B watches. Odd ones: the companion marks through B, watched on A.
        pairs = []
        for index, session_id in enumerate(session_ids):
            if index % 2 == 0:
                marker = issuer.issue(f"c-{session_id}", 7200).token
                pairs.append(Pair(session_id, marker, url_a, watchers[index]))
            else:
                marker = issuer.issue(f"p-{session_id}", 7200).token
                pairs.append(Pair(session_id, marker, url_b, clients[index]))
        cpu_before = [cpu_s(server.pid) for server in servers]
        spy = None
        if args.profile is not None:
            spy = start_profile(servers[0].pid, args.duration_s, args.profile)
        measured = await measure(pairs, args.rate, args.duration_s, args.timeline)
        latencies_ms = measured.latencies_ms
        finish_profile(spy)
        cpu_used = [cpu_s(s.pid) - b for s, b in zip(servers, cpu_before, strict=True)]
        if args.system == "sessionclock":
            for url in urls:
                print(f"  {url}: {server_side_ready(url)}", file=sys.stderr)
        stages = {}
        if args.stages:
            await asyncio.sleep(1.5)  # the probe writes once a second
            stages = read_stages(workdir / "stages")
        return {
            "system": args.system,
            "nodes": args.nodes,
            "sessions": args.sessions,
            "sockets": len(sockets),
            "rate_per_s": args.rate,
            "duration_s": args.duration_s,
            "marks": len(latencies_ms),
            "missed": measured.missed,
            "latency_ms": summary(latencies_ms),
            "http_answer_ms": measured.http_ms,
            "per_second": measured.per_second,
            "p50_ms": round(statistics.median(latencies_ms), 2),
            "p99_ms": round(percentile(latencies_ms, 0.99), 2),
            "max_ms": round(max(latencies_ms), 2),
            "rss_per_socket_kib": round(per_socket_kib, 1),
            "rss_nodes_kib": rss_after,
            "node_cpu_share": [round(c / args.duration_s, 2) for c in cpu_used],
            "profile_top": [] if args.profile is None else top_frames(args.profile),
            "stages_ms": stages,
        }
    finally:
        await asyncio.gather(
            *(socket.close() for socket in sockets), return_exceptions=True
        )
        for server in servers:
            server.stop()
        if redis is not None:
            redis.stop()


def _node(
    system: str,
    name: str,
    database: Database,
    redis: RedisServer | None,
    workdir: Path,
    args: argparse.Namespace,
) -> tuple[ServerProcess | ChildProcess, str]:
    """One node of the system under test, not started yet, and its base URL."""
    if system == "sessionclock":
        env = server_env(
            database.url,
            None if redis is None else redis.url,
            SESSIONCLOCK_LOG_LEVEL=args.log_level,
            SESSIONCLOCK_NODE_NAME=name,
        )
        if args.stages:
            # bench/stages/sitecustomize.py times the mark's stages in the node.
            paths = [str(STAGES_PROBE), os.environ.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
            env["SESSIONCLOCK_BENCH_STAGES"] = str(workdir / "stages")
        server = ServerProcess(env, workdir)
        return server, server.base_url
    port = free_port()
    command = [
        str(Path(__file__).parent / "peers" / "socketio_server.py"),
        "--port",
        str(port),
        "--database-dsn",
        database.dsn,
    ]
    if redis is not None:
        command += ["--redis-url", redis.url]
    return ChildProcess(
        command, workdir, f"socketio-{name}"
    ), f"http://127.0.0.1:{port}"


def read_stages(folder: Path) -> dict[str, object]:
    """Each node's stage timings, as the probe last wrote them."""
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


def cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", choices=SYSTEMS, default="sessionclock")
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
    parser.add_argument(
        "--profile", type=Path, help="write a py-spy profile of node A here"
    )
    parser.add_argument(
        "--stages",
        action="store_true",
        help="time the stages of each mark inside the nodes (sessionclock only)",
    )
    return parser


def main() -> None:
    args = parser().parse_args()
    raise_file_limit()
    result = uvloop.run(run(args))
    print(json.dumps({**result, "machine": machine()}, indent=2))


if __name__ == "__main__":
    main()
