"""What the benchmarks share: statistics, databases, seeding, processes, machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from sessionclock.storage.tables import sessions

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

POSTGRES_ADMIN_URL = os.environ.get(
    "SESSIONCLOCK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

# The columns of sessionclock's `sessions` table, in its order: `session_row`'s.
SESSION_COLUMNS = tuple(column.name for column in sessions.c)
SessionRow = tuple[Any, ...]


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile; `share` is 0 to 1."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """p50, p95, p99 and max of a sample, rounded to hundredths, with its size."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.50), 2),
        "p95": round(percentile(values, 0.95), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2),
    }


def now_ms() -> float:
    """The wall clock in epoch milliseconds, the same for every process here."""
    return time.time() * 1000


def rss_kib(pid: int) -> int:
    """Resident memory of one process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def raise_file_limit() -> None:
    """Allow as many open sockets as the hard limit does."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """What this run ran on, and what else was running."""
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def versions() -> dict[str, str]:
    """Versions of sessionclock, the peers and the services they run on."""
    found: dict[str, str] = {}
    for name in (
        "sessionclock",
        "uvicorn",
        "fastapi",
        "sqlalchemy",
        "asyncpg",
        "websockets",
        "redis",
        "python-socketio",
        "python-engineio",
        "apscheduler",
        "aiohttp",
        "playwright",
        "matplotlib",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    for name, command in (
        ("postgresql", ["psql", "--version"]),
        ("redis-server", ["redis-server", "--version"]),
        ("node", ["node", "--version"]),
        ("chromium", ["/usr/bin/chromium", "--version"]),
    ):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            found[name] = subprocess.run(
                command, capture_output=True, text=True, timeout=20, check=False
            ).stdout.strip()
    lock = ROOT / "bench" / "peers" / "timesync" / "package-lock.json"
    if lock.exists():
        packages = json.loads(lock.read_text()).get("packages", {})
        found["timesync"] = packages.get("node_modules/timesync", {}).get("version", "")
    return found


@dataclass(frozen=True)
class Database:
    """A database of the benchmark's own: its SQLAlchemy URL and its asyncpg DSN."""

    url: str
    dsn: str


@contextlib.asynccontextmanager
async def postgres_database(prefix: str) -> AsyncIterator[Database]:
    """Create a PostgreSQL database for one run, migrated; drop it afterwards."""
    name = f"sessionclock_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        database = Database(
            base.replace("postgresql://", "postgresql+asyncpg://") + f"/{name}",
            f"{base}/{name}",
        )
        await migrate(database.url)
        yield database
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def sqlite_database(workdir: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file in a work folder; the DSN is the file's path."""
    path = workdir / f"bench-{uuid.uuid4().hex[:8]}.db"
    database = Database(f"sqlite+aiosqlite:///{path}", str(path))
    await migrate(database.url)
    try:
        yield database
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")


async def migrate(url: str) -> None:
    """Bring a database to sessionclock's schema with sessionclock's own migrations."""
    from sessionclock.storage.database import create_engine
    from sessionclock.storage.database import migrate as run_migrations

    engine = create_engine(url)
    try:
        await run_migrations(engine)
    finally:
        await engine.dispose()


def session_row(
    session_id: str,
    *,
    starts_at_ms: int,
    ends_at_ms: int,
    status: str,
    created_at_ms: int,
    lobby_lead_s: int = 300,
    ready_at_ms: int | None = None,
    ended_at_ms: int | None = None,
    expired_reason: str | None = None,
) -> SessionRow:
    """One row of the sessions table, as the service would have written it."""
    return (
        session_id,
        f"c-{session_id}",
        f"p-{session_id}",
        starts_at_ms,
        ends_at_ms,
        lobby_lead_s,
        starts_at_ms - lobby_lead_s * 1000,
        "confirmed",
        status,
        ready_at_ms,
        ready_at_ms,
        expired_reason,
        "",
        2 if ready_at_ms is not None else 1,
        ended_at_ms,
        created_at_ms,
        created_at_ms,
    )


async def seed_postgres(
    dsn: str, rows: Iterable[SessionRow], events: Iterable[tuple[Any, ...]] = ()
) -> None:
    """Bulk-load sessions (and event rows) with COPY, then refresh the statistics."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "sessions", records=list(rows), columns=list(SESSION_COLUMNS)
        )
        event_rows = list(events)
        if event_rows:
            await connection.copy_records_to_table(
                "session_events",
                records=event_rows,
                columns=["session_id", "key", "type", "version", "at_ms", "data"],
            )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def seed_sqlite(
    path: str, rows: Iterable[SessionRow], events: Iterable[tuple[Any, ...]] = ()
) -> None:
    """Bulk-load sessions (and event rows) into a SQLite file in one transaction."""
    import sqlite3

    placeholders = ", ".join("?" for _ in SESSION_COLUMNS)
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA foreign_keys=ON")
        with connection:
            connection.executemany(
                f"INSERT INTO sessions ({', '.join(SESSION_COLUMNS)}) "  # noqa: S608
                f"VALUES ({placeholders})",
                rows,
            )
            connection.executemany(
                "INSERT INTO session_events "
                "(session_id, key, type, version, at_ms, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                events,
            )
        connection.execute("ANALYZE")


class ChildProcess:
    """A peer's server in a child process that prints `ready` when it serves."""

    def __init__(self, args: list[str], workdir: Path, name: str) -> None:
        self.args = args
        self.log_path = workdir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 120) -> None:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self._process.stdout is not None
        deadline = time.monotonic() + timeout_s
        os.set_blocking(self._process.stdout.fileno(), False)
        buffered = b""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.args} exited:\n{self.log()}")
            chunk = self._process.stdout.read()
            if chunk:
                buffered += chunk
                if b"ready" in buffered:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.args} did not become ready:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self._process is not None, "not running"
        return self._process.pid

    def stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def sleep_until(deadline_s: float) -> None:
    """Sleep until a moment of `time.perf_counter()`; return at once if it passed."""
    await asyncio.sleep(max(0.0, deadline_s - time.perf_counter()))


def start_profile(pid: int, duration_s: float, path: Path) -> subprocess.Popen[bytes]:
    """Sample a process with py-spy (raw collapsed stacks) for a while, in the back."""
    spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(duration_s))),
            "--rate",
            "100",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finish_profile(spy: subprocess.Popen[bytes] | None, timeout_s: float = 60) -> None:
    """Wait for py-spy to write its file; stop it if it hangs."""
    if spy is None:
        return
    try:
        spy.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        spy.terminate()
        spy.wait(timeout=10)


def top_frames(path: Path, limit: int = 14) -> list[tuple[float, str]]:
    """Where a py-spy raw profile spends its samples: sessionclock's own functions
    (inclusive share) first, then the leaf functions anywhere (self share)."""
    if not path.exists():
        return []
    inclusive: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        names = [_frame_name(frame) for frame in stack.split(";")]
        leaves[names[-1]] = leaves.get(names[-1], 0) + count
        for name in set(names):
            # The entry points every sample passes through say nothing.
            if "sessionclock/" in name and not name.startswith(_ENTRY_FRAMES):
                inclusive[name] = inclusive.get(name, 0) + count
    if not total:
        return []
    ours = sorted(inclusive.items(), key=lambda item: -item[1])[: limit // 2]
    hot = sorted(leaves.items(), key=lambda item: -item[1])[: limit - len(ours)]
    return [(round(100 * n / total, 1), f"{name}") for name, n in ours] + [
        (round(100 * n / total, 1), f"self: {name}") for name, n in hot
    ]


_ENTRY_FRAMES = ("<module>", "main (", "_serve (")


def _frame_name(frame: str) -> str:
    name, _, where = frame.partition(" (")
    place = where.rstrip(")").rsplit(":", 1)[0].split("site-packages/")[-1]
    return f"{name} ({place})"
