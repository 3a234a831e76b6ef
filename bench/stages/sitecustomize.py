"""Times the stages of a ready mark inside a node, for `push_latency.py --stages`.

Python imports this module at start-up when its folder is on PYTHONPATH. In a
process whose environment names SESSIONCLOCK_BENCH_STAGES (a folder), it wraps the
functions a ready mark passes through on the node that serves it, times each call
made while a mark is being served, and writes the summaries to
`<folder>/<node>.json` every second. Each wrap adds about a microsecond.
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

_FOLDER = os.environ.get("SESSIONCLOCK_BENCH_STAGES")
_NODE = os.environ.get("SESSIONCLOCK_NODE_NAME", "node")
_in_mark = contextvars.ContextVar("in_mark", default=False)
_durations_s: dict[str, list[float]] = {}


def _wrap(owner: Any, name: str, stage: str, *, starts_mark: bool = False) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        if starts_mark:
            _in_mark.set(True)
        elif not _in_mark.get():
            return await original(*args, **kwargs)
        started_s = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            _durations_s.setdefault(stage, []).append(time.perf_counter() - started_s)

    setattr(owner, name, timed)


def _summary(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1e3, 3)

    return {"n": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99)}


def _write_every_second(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        time.sleep(1)
        # Copy the items at once: the node's loop may add a stage while this thread
        # walks them, and a dict that grows under iteration raises.
        stages = list(_durations_s.items())
        found = {stage: _summary(list(v)) for stage, v in stages if v}
        (folder / f"{_NODE}.json").write_text(json.dumps(found, indent=1))


def _install(folder: Path) -> None:
    import asyncpg.prepared_stmt
    from redis.asyncio import Redis

    from sessionclock.http.hot_path import ReadyMarks
    from sessionclock.service.sessions import SessionService
    from sessionclock.storage.database import DriverStatement
    from sessionclock.storage.repository import SessionRepository

    _wrap(ReadyMarks, "__call__", "request", starts_mark=True)
    _wrap(SessionService, "mark_ready", "service")
    _wrap(SessionRepository, "replace", "write")
    _wrap(DriverStatement, "execute", "write: statement")
    _wrap(asyncpg.prepared_stmt.PreparedStatement, "fetch", "write: driver")
    _wrap(SessionService, "_announce", "announce")
    _wrap(Redis, "publish", "announce: publish")

    threading.Thread(target=_write_every_second, args=(folder,), daemon=True).start()


if _FOLDER:
    _install(Path(_FOLDER))
