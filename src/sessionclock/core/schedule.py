"""Scheduling decisions: which moments matter for a session, and a queue of them."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from enum import StrEnum

from sessionclock.core.machine import no_show_at_ms, warning_due
from sessionclock.core.session import Session, Status, Timing


class DeadlineKind(StrEnum):
    LOBBY_OPENS = "lobby_opens"
    WARNING = "warning"
    NO_SHOW = "no_show"
    ENDS = "ends"


@dataclass(frozen=True, slots=True)
class Deadline:
    session_id: str
    at_ms: int
    kind: DeadlineKind
    remaining_s: int | None = None


def deadlines(session: Session, timing: Timing) -> list[Deadline]:
    """Every moment at which time will change this session or raise a warning."""
    if session.is_terminal:
        return []

    found: list[Deadline] = []
    if session.status is Status.SCHEDULED:
        found.append(
            Deadline(session.id, session.lobby_opens_at_ms, DeadlineKind.LOBBY_OPENS)
        )
    no_show_ms = no_show_at_ms(session, timing)
    if session.status is not Status.READY and no_show_ms < session.ends_at_ms:
        found.append(Deadline(session.id, no_show_ms, DeadlineKind.NO_SHOW))
    for remaining_s in timing.warnings_s:
        at_ms = session.ends_at_ms - remaining_s * 1000
        found.append(Deadline(session.id, at_ms, DeadlineKind.WARNING, remaining_s))
    found.append(Deadline(session.id, session.ends_at_ms, DeadlineKind.ENDS))
    return sorted(found, key=lambda deadline: deadline.at_ms)


class DeadlineQueue:
    """The deadlines one node will fire, earliest first.

    A session is tracked at one version: tracking a newer version drops the
    deadlines of the older one, so a rescheduled session never fires stale moments.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Deadline, int]] = []
        self._order = itertools.count()
        self._versions: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._versions)

    def track(self, session: Session, timing: Timing, now_ms: int) -> bool:
        """Queue a session's deadlines; False when the queue is left as it was.

        That is when this version is already queued, and when an ended session
        was never queued here: cleanup ends 100,000 of those at once, and each
        True costs the scheduler a gauge update and a wake-up.
        """
        known = self._versions.get(session.id)
        if known is not None and known >= session.version:
            return False
        if session.is_terminal:
            # Its deadlines, if any, go stale and leave the heap as they come due.
            return self._versions.pop(session.id, None) is not None

        self._versions[session.id] = session.version
        for deadline in deadlines(session, timing):
            # A threshold passed a while ago still fires while it is the one due (a
            # node that restarted with 200 s left still warns "300"); older ones not.
            if (
                deadline.kind is DeadlineKind.WARNING
                and deadline.at_ms < now_ms - 1000
                and warning_due(session, now_ms, timing) != deadline.remaining_s
            ):
                continue
            entry = (deadline.at_ms, next(self._order), deadline, session.version)
            heapq.heappush(self._heap, entry)
        return True

    def forget(self, session_id: str) -> None:
        self._versions.pop(session_id, None)

    def next_at_ms(self) -> int | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def upcoming(self, limit: int) -> list[Deadline]:
        """The next `limit` deadlines still to fire, earliest first; nothing moves."""
        live = (
            entry
            for entry in self._heap
            if self._versions.get(entry[2].session_id) == entry[3]
        )
        return [entry[2] for entry in heapq.nsmallest(limit, live)]

    def pop_due(self, now_ms: int) -> list[Deadline]:
        """Remove and return every deadline at or before `now_ms`."""
        due: list[Deadline] = []
        while self._heap:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now_ms:
                break
            _, _, deadline, _ = heapq.heappop(self._heap)
            due.append(deadline)
        return due

    def _drop_stale(self) -> None:
        while self._heap:
            _, _, deadline, version = self._heap[0]
            if self._versions.get(deadline.session_id) == version:
                return
            heapq.heappop(self._heap)
