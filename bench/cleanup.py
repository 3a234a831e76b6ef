"""Cleanup throughput: expire overdue sessions and purge old runtime state, rows/s.

A migrated database is seeded with `--overdue` live sessions whose end has passed
and `--ended` sessions that ended before the retention, each with `--events` event
rows: what cleanup must expire and purge. Then `sessionclock cleanup` runs once, as
an operator or cron would run it, and its own recorded `duration_ms` gives rows per
second. The same seeding is then measured a second time at the repository, one
statement at a time, to tell the database's share from the service's.

    python bench/cleanup.py --backend postgresql --overdue 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import server_env

from bench.common import (
    Database,
    log,
    now_ms,
    postgres_database,
    seed_postgres,
    seed_sqlite,
    session_row,
    sqlite_database,
)
from sessionclock.storage.database import create_engine
from sessionclock.storage.repository import SessionRepository

RETENTION_S = 3600
NO_SHOW_S = 600


def rows(overdue: int, ended: int, events: int) -> tuple[list[Any], list[Any]]:
    """Sessions to expire and ended sessions whose event rows are to be purged."""
    now = int(now_ms())
    sessions = []
    for index in range(overdue):
        ends_at_ms = now - 60_000 - index
        sessions.append(
            session_row(
                f"due-{index}",
                starts_at_ms=ends_at_ms - 1_800_000,
                ends_at_ms=ends_at_ms,
                status="ready",
                created_at_ms=now - 7_200_000,
                ready_at_ms=ends_at_ms - 1_700_000,
            )
        )
    event_rows = []
    for index in range(ended):
        ended_at_ms = now - (RETENTION_S + 600) * 1000 - index
        session_id = f"old-{index}"
        sessions.append(
            session_row(
                session_id,
                starts_at_ms=ended_at_ms - 1_800_000,
                ends_at_ms=ended_at_ms,
                status="expired",
                created_at_ms=ended_at_ms - 3_600_000,
                ready_at_ms=ended_at_ms - 1_700_000,
                ended_at_ms=ended_at_ms,
                expired_reason="time_up",
            )
        )
        for version in range(1, events + 1):
            event_rows.append(
                (session_id, f"v{version}", "ready", version, ended_at_ms, "{}")
            )
    return sessions, event_rows


@contextlib.asynccontextmanager
async def seeded(args: argparse.Namespace, workdir: Path) -> AsyncIterator[Database]:
    sessions, event_rows = rows(args.overdue, args.ended, args.events)
    if args.backend == "postgresql":
        async with postgres_database("cleanup") as database:
            await seed_postgres(database.dsn, sessions, event_rows)
            yield database
    else:
        async with sqlite_database(workdir) as database:
            await asyncio.to_thread(seed_sqlite, database.dsn, sessions, event_rows)
            yield database


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sessionclock-bench-cleanup-"))
    result: dict[str, Any] = {
        "backend": args.backend,
        "overdue": args.overdue,
        "ended": args.ended,
        "event_rows": args.ended * args.events,
    }

    # The product, end to end: the command an operator's cron runs.
    async with seeded(args, workdir) as database:
        log(f"cleanup {args.backend}: seeded")
        env = {
            **os.environ,
            **server_env(database.url, SESSIONCLOCK_LOG_LEVEL=args.log_level),
            "SESSIONCLOCK_RETENTION_S": str(RETENTION_S),
            "SESSIONCLOCK_NO_SHOW_S": str(NO_SHOW_S),
        }
        started_s = time.perf_counter()
        with (workdir / "cleanup.log").open("wb") as output:
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "sessionclock", "cleanup"],
                env=env,
                cwd=workdir,
                stdout=subprocess.PIPE,
                stderr=output,
                timeout=args.timeout_s,
                check=True,
            )
        wall_s = time.perf_counter() - started_s
        answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
        duration_ms = await _recorded_duration_ms(database.url)
        moved = answer["expired"] + answer["purged"]
        result["command"] = {
            "expired": answer["expired"],
            "purged": answer["purged"],
            "duration_ms": duration_ms,
            "rows_per_s": round(moved / (duration_ms / 1000)),
            "wall_s_with_start": round(wall_s, 2),
        }

    # The statements alone, on a fresh copy of the same state.
    async with seeded(args, workdir) as database:
        engine = create_engine(database.url)
        try:
            repository = SessionRepository(engine)
            started_s = time.perf_counter()
            expired = await repository.expire_overdue(int(now_ms()), NO_SHOW_S)
            expire_s = time.perf_counter() - started_s
            started_s = time.perf_counter()
            purged = await repository.purge_ended(int(now_ms()) - RETENTION_S * 1000)
            purge_s = time.perf_counter() - started_s
        finally:
            await engine.dispose()
        result["statements"] = {
            "expire_rows_per_s": round(len(expired) / expire_s),
            "expire_s": round(expire_s, 2),
            "purge_rows_per_s": round(purged / purge_s),
            "purge_s": round(purge_s, 2),
        }
    log(f"cleanup {args.backend}: {json.dumps(result)}")
    return result


async def _recorded_duration_ms(url: str) -> int:
    engine = create_engine(url)
    try:
        run = await SessionRepository(engine).last_cleanup()
    finally:
        await engine.dispose()
    assert run is not None, "cleanup recorded no run"
    return max(run.duration_ms, 1)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["postgresql", "sqlite"])
    parser.add_argument("--overdue", type=int, default=100_000)
    parser.add_argument("--ended", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2, help="event rows each")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--timeout-s", type=float, default=600.0)
    return parser


def main() -> None:
    args = parser().parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
