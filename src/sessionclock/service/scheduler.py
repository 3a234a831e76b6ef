"""Fires each session's deadlines on time, and sweeps the database as a safety net.

Each node keeps the deadlines of the sessions it knows (those the bus told it of, and
those whose lobby opens within the horizon) in a queue in memory and sleeps until the
earliest one. Firing a deadline runs conditional statements that are exactly-once in
the database, so every node may fire the same deadline. A periodic sweep catches what
a dead or late node missed, and a periodic cleanup expires and purges in bulk.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from sessionclock.core.schedule import Deadline, DeadlineKind, DeadlineQueue
from sessionclock.core.session import Session
from sessionclock.metrics import Metrics
from sessionclock.service.sessions import SessionService

log = structlog.get_logger(__name__)

# Wait this long after an unexpected failure before the loop tries again.
_RETRY_AFTER_ERROR_S = 1.0


class Scheduler:
    """One node's timers for lobby opening, warnings, no-shows and ends."""

    def __init__(
        self,
        service: SessionService,
        metrics: Metrics,
        *,
        sweep_interval_s: float,
        cleanup_interval_s: float,
    ) -> None:
        self._service = service
        self._clock = service.clock
        self._timing = service.timing
        self._metrics = metrics
        self._sweep_interval_s = sweep_interval_s
        self._cleanup_interval_s = cleanup_interval_s
        # Load sessions whose lobby opens before the sweep after next.
        self._horizon_ms = int(sweep_interval_s * 3 * 1000) + 60_000
        self._loaded_until_ms: int | None = None
        self._queue = DeadlineQueue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.next_cleanup_at_ms: int | None = None

    def track(self, session: Session) -> None:
        """Hold a session's deadlines (a newer version replaces an older one)."""
        earliest_ms = self._queue.next_at_ms()
        if self._queue.track(session, self._timing, self._clock.now_ms()):
            self._metrics.scheduler_sessions.set(len(self._queue))
            # Every change of every session passes here: the timer is set again
            # only when it must fire sooner. One that fires for a deadline that
            # moved away finds nothing due and waits for the next.
            now_earliest_ms = self._queue.next_at_ms()
            if now_earliest_ms is not None and (
                earliest_ms is None or now_earliest_ms < earliest_ms
            ):
                self._wake.set()

    def next_deadline_ms(self) -> int | None:
        return self._queue.next_at_ms()

    def upcoming(self, limit: int = 10) -> list[Deadline]:
        """The next deadlines this node will act on, earliest first."""
        return self._queue.upcoming(limit)

    @property
    def tracked(self) -> int:
        return len(self._queue)

    async def fire_due(self) -> int:
        """Act on every deadline at or before now; returns how many were due.

        Ends, no-shows and lobby openings due together are written by the
        set-based statements of the sweep, so that ten thousand sessions ending in
        the same second cost one statement, not ten thousand round trips; the
        lobby statement runs only when a lobby opening is among them.
        """
        due = self._queue.pop_due(self._clock.now_ms())
        if not due:
            return 0
        if any(deadline.kind is not DeadlineKind.WARNING for deadline in due):
            # A lobby due later is opened by its own timer or the periodic sweep.
            lobby_due = any(d.kind is DeadlineKind.LOBBY_OPENS for d in due)
            await self._service.sweep(open_lobbies=lobby_due)
        warned: set[tuple[str, int]] = set()
        for deadline in due:
            if deadline.remaining_s is None:
                continue
            key = (deadline.session_id, deadline.remaining_s)
            if key not in warned:
                warned.add(key)
                await self._service.warn(deadline.session_id, deadline.remaining_s)
        return len(due)

    async def sweep(self) -> None:
        """Apply what was missed, then load the deadlines of the coming horizon.

        Only sessions whose lobby enters the horizon since the last sweep are read:
        the others are tracked already, and the bus tells of every change to them.
        `reload()` (at start, and when the bus comes back) reads them all again.
        """
        await self._service.sweep()
        horizon_ms = self._clock.now_ms() + self._horizon_ms
        loaded = await self._service.repository.live_before(
            horizon_ms, after_ms=self._loaded_until_ms
        )
        for session in loaded:
            self.track(session)
        self._loaded_until_ms = horizon_ms

    async def reload(self) -> None:
        """Read the whole horizon again (the bus came back); only once started."""
        self._loaded_until_ms = None
        if self._tasks:
            await self.sweep()

    async def start(self) -> None:
        await self.sweep()
        self._tasks = [
            asyncio.create_task(self._deadline_loop(), name="scheduler-deadlines"),
            asyncio.create_task(self._sweep_loop(), name="scheduler-sweep"),
            asyncio.create_task(self._cleanup_loop(), name="scheduler-cleanup"),
        ]
        log.info(
            "scheduler.started",
            tracked=len(self._queue),
            sweep_interval_s=self._sweep_interval_s,
            cleanup_interval_s=self._cleanup_interval_s,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _deadline_loop(self) -> None:
        while True:
            try:
                next_ms = self._queue.next_at_ms()
                self._wake.clear()
                if next_ms is None:
                    await self._wake.wait()
                else:
                    delay_s = (next_ms - self._clock.now_ms()) / 1000
                    if delay_s > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), delay_s)
                await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler.deadline_failed")
                await asyncio.sleep(_RETRY_AFTER_ERROR_S)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler.sweep_failed")

    async def _cleanup_loop(self) -> None:
        while True:
            self.next_cleanup_at_ms = self._clock.now_ms() + int(
                self._cleanup_interval_s * 1000
            )
            await asyncio.sleep(self._cleanup_interval_s)
            try:
                await self._service.cleanup("schedule")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("cleanup.failed", trigger="schedule")
