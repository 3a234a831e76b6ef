"""Expiry precision: many sessions ending in the same second, among many scheduled.

The database is migrated with sessionclock's own migrations and seeded with one
COPY: `--ending` ready sessions whose ends are spread over one second, `--total`
sessions in all (the rest scheduled later). The system under test starts, a client
socket is opened for `--sample` of the ending sessions, and each socket times the
moment its `expired` snapshot arrives: lateness is that moment minus `ends_at`,
on the one clock every process here shares. Afterwards the database says whether
every ending session expired (`missed` counts those that did not in time).

    python bench/expiry.py --system sessionclock --total 100000 --ending 10000
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

import asyncpg
import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import SECRET_KEY, ServerProcess, free_port, server_env
from tests.realtime.conftest import RedisServer

from bench.common import (
    ChildProcess,
    Database,
    finish_profile,
    log,
    now_ms,
    postgres_database,
    raise_file_limit,
    seed_postgres,
    session_row,
    sleep_until,
    start_profile,
    summary,
    top_frames,
)
from sessionclock.core.clock import SystemClock
from sessionclock.credentials import TokenIssuer

SYSTEMS = ("sessionclock", "apscheduler", "redis", "cron")
OPEN_PER_S = 500
WINDOW_MS = 1000
# How long after the last end the run waits for every socket (plus a cron period).
PATIENCE_S = 30.0


class Watch:
    """One client socket that waits for its session's `expired` snapshot."""

    def __init__(self, connection: ClientConnection, ends_at_ms: int) -> None:
        self.connection = connection
        self.ends_at_ms = ends_at_ms
        self.lateness_ms: float | None = None
        self.done = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.connection:
                fields = json.loads(raw)
                if fields.get("type") != "snapshot":
                    continue
                if fields["session"]["status"] == "expired":
                    self.lateness_ms = now_ms() - self.ends_at_ms
                    self.done.set()
                    return
        except ConnectionClosed:
            return

    async def close(self) -> None:
        self._reader.cancel()
        await self.connection.close()


def seed_rows(total: int, ending: int, ends_from_ms: int) -> list[tuple[Any, ...]]:
    """`ending` ready sessions ending within one second, the rest booked later."""
    now = int(now_ms())
    rows = []
    for index in range(ending):
        ends_at_ms = ends_from_ms + index * WINDOW_MS // ending
        rows.append(
            session_row(
                f"end-{index}",
                starts_at_ms=ends_at_ms - 1_800_000,
                ends_at_ms=ends_at_ms,
                status="ready",
                created_at_ms=now - 3_600_000,
                ready_at_ms=ends_at_ms - 1_700_000,
            )
        )
    for index in range(total - ending):
        # Later sessions, one every 100 ms from one hour on: live, not due.
        starts_at_ms = now + 3_600_000 + index * 100
        rows.append(
            session_row(
                f"later-{index}",
                starts_at_ms=starts_at_ms,
                ends_at_ms=starts_at_ms + 1_800_000,
                status="scheduled",
                created_at_ms=now,
            )
        )
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with postgres_database("expiry") as database:
        return await _run_on(args, database)


async def _run_on(args: argparse.Namespace, database: Database) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sessionclock-bench-expiry-"))
    # Round up to a whole second, so that "the same second" is literal.
    ends_from_ms = (int(now_ms()) // 1000 + 1) * 1000 + int(args.lead_s * 1000)
    await seed_postgres(database.dsn, seed_rows(args.total, args.ending, ends_from_ms))
    log(f"expiry {args.system}: seeded {args.total}, ending at {ends_from_ms}")

    redis = RedisServer(workdir) if args.system == "redis" else None
    server: ServerProcess | ChildProcess
    if args.system == "sessionclock":
        # No warnings: the peers send none, and ten thousand 60 s warnings would
        # be extra work in the minute before the measured second.
        server = ServerProcess(
            server_env(
                database.url,
                SESSIONCLOCK_WARNINGS_S="",
                SESSIONCLOCK_LOG_LEVEL=args.log_level,
            ),
            workdir,
        )
        base_url = server.base_url.replace("http", "ws", 1)
    else:
        port = free_port()
        script = {
            "apscheduler": "apscheduler_peer.py",
            "redis": "redis_expiry.py",
            "cron": "cron_sweep.py",
        }[args.system]
        command = [
            str(Path(__file__).parent / "peers" / script),
            "--port",
            str(port),
            "--database-dsn",
            database.dsn,
        ]
        if redis is not None:
            command += ["--redis-url", redis.url]
        if args.system == "cron":
            phase_s = random.uniform(0, args.cron_period_s)
            command += [
                "--period-s",
                str(args.cron_period_s),
                "--phase-s",
                str(phase_s),
            ]
        server = ChildProcess(command, workdir, f"expiry-{args.system}")
        base_url = f"ws://127.0.0.1:{port}"

    watches: list[Watch] = []
    started_s = time.perf_counter()
    try:
        if redis is not None:
            redis.start()
        server.start()
        ready_in_s = time.perf_counter() - started_s
        watches = await _open(args, base_url, ends_from_ms)
        open_by_ms = now_ms()
        if open_by_ms > ends_from_ms:
            raise RuntimeError("setup took longer than the lead; raise --lead-s")

        spy = None
        if args.profile is not None and isinstance(server, ServerProcess):
            # From two seconds before the first end to a few seconds after the last.
            await asyncio.sleep(max(0.0, (ends_from_ms - 2000 - now_ms()) / 1000))
            spy = start_profile(server.pid, 8, args.profile)

        patience_s = PATIENCE_S + (args.cron_period_s if args.system == "cron" else 0)
        wait_until_ms = ends_from_ms + WINDOW_MS + patience_s * 1000
        await asyncio.wait(
            [asyncio.create_task(watch.done.wait()) for watch in watches],
            timeout=max(1.0, (wait_until_ms - now_ms()) / 1000),
        )
        lateness_ms = [w.lateness_ms for w in watches if w.lateness_ms is not None]
        # Every end is due by now; give the writes of the last ones a moment.
        await asyncio.sleep(max(0.0, (ends_from_ms + WINDOW_MS - now_ms()) / 1000) + 2)
        database_lateness, not_expired = await _database_view(database.dsn)
        finish_profile(spy)
    finally:
        await asyncio.gather(*(w.close() for w in watches), return_exceptions=True)
        server.stop()
        if redis is not None:
            redis.stop()
    result = {
        "system": args.system,
        "total": args.total,
        "ending": args.ending,
        "sample_sockets": len(watches),
        "client_lateness_ms": summary(lateness_ms),
        "client_missed": len(watches) - len(lateness_ms),
        "database_lateness_ms": summary(database_lateness),
        "database_missed": not_expired,
        "ready_in_s": round(ready_in_s, 1),
        "lead_left_s": round((ends_from_ms - open_by_ms) / 1000, 1),
        "log_level": args.log_level,
        "profile_top": [] if args.profile is None else top_frames(args.profile),
    }
    if args.system == "cron":
        result["cron_period_s"] = args.cron_period_s
        result["cron_phase_s"] = round(phase_s, 2)
    log(f"expiry {args.system}: {json.dumps(result)}")
    return result


async def _open(
    args: argparse.Namespace, base_url: str, ends_from_ms: int
) -> list[Watch]:
    """One client socket for each sampled ending session, opened at a steady pace."""
    step = max(1, args.ending // args.sample)
    chosen = list(range(0, args.ending, step))[: args.sample]
    issuer = TokenIssuer(SECRET_KEY, SystemClock())
    semaphore = asyncio.Semaphore(64)
    begin_s = time.perf_counter()

    async def one(order: int, index: int) -> Watch:
        await sleep_until(begin_s + order / OPEN_PER_S)
        session_id = f"end-{index}"
        if args.system == "sessionclock":
            token = issuer.issue(f"c-{session_id}", 7200).token
            address = f"{base_url}/api/sessions/{session_id}/ws?access_token={token}"
        else:
            address = f"{base_url}/ws/{session_id}"
        async with semaphore:
            connection = await connect(
                address, open_timeout=20, ping_interval=None, max_size=2**20
            )
        return Watch(connection, ends_from_ms + index * WINDOW_MS // args.ending)

    return list(await asyncio.gather(*(one(o, i) for o, i in enumerate(chosen))))


async def _database_view(dsn: str) -> tuple[list[float], int]:
    """Lateness as the database stamped it, and how many ending sessions live on."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT status, ended_at_ms - ends_at_ms AS late_ms FROM sessions "
            "WHERE id LIKE 'end-%'"
        )
    finally:
        await connection.close()
    lateness = [float(r["late_ms"]) for r in rows if r["status"] == "expired"]
    return lateness, sum(1 for r in rows if r["status"] != "expired")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", choices=SYSTEMS, default="sessionclock")
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--ending", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=2000, help="client sockets")
    parser.add_argument("--lead-s", type=float, default=60.0)
    parser.add_argument("--cron-period-s", type=float, default=20.0)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--profile", type=Path, help="py-spy profile of the node")
    return parser


def main() -> None:
    args = parser().parse_args()
    raise_file_limit()
    print(json.dumps(uvloop.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
