"""Python's cyclic garbage collector, paced for a node that holds thousands of sockets.

A full collection walks every object the collector tracks and holds the event loop
meanwhile. A node with 5,000 sockets tracks about half a million objects, most of
them the sockets' own, and a full pass over them took 400 to 800 ms on the
benchmark machine; CPython starts one on its own whenever the objects that
survived since the last one reach a quarter of those it kept then, which under a
steady load is every minute or so.

So a node freezes what survives: every `interval_s` it collects what is young and
moves the survivors to the permanent generation, where the collections CPython
starts on its own no longer walk them. Objects there are still freed when nothing
refers to them; only cycles among them wait, for the full pass that the node runs
every `full_every` rounds (hourly with the defaults), which unfreezes everything,
collects it and freezes the survivors again.
"""

from __future__ import annotations

import asyncio
import gc
import time

import structlog

log = structlog.get_logger(__name__)


class Collector:
    """Runs the collector's passes on a schedule; `run` is the node's task for it."""

    def __init__(self, *, interval_s: float, full_every: int) -> None:
        self._interval_s = interval_s
        self._full_every = full_every
        self.rounds = 0

    def collect(self, *, full: bool) -> None:
        """Collect, then freeze what survives; `full` walks the frozen objects too."""
        started_s = time.perf_counter()
        if full:
            gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        duration_ms = round((time.perf_counter() - started_s) * 1000, 1)
        if full:
            # Counting the frozen objects walks them all: only once an hour.
            log.info(
                "gc.collected",
                full=True,
                duration_ms=duration_ms,
                collected=collected,
                frozen=gc.get_freeze_count(),
            )
        else:
            log.debug(
                "gc.collected", full=False, duration_ms=duration_ms, collected=collected
            )

    async def run(self) -> None:
        # What is loaded at start (modules, classes, the app) lives as long as the
        # process: out of the way from the first round.
        self.collect(full=True)
        while True:
            await asyncio.sleep(self._interval_s)
            self.rounds += 1
            self.collect(full=self.rounds % self._full_every == 0)
