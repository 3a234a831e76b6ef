"""Scheduling decisions: a session's deadlines and the queue that fires them."""

from __future__ import annotations

from dataclasses import replace

from sessionclock.core.machine import cancel, create, mark_ready, rebook, settle
from sessionclock.core.schedule import (
    Deadline,
    DeadlineKind,
    DeadlineQueue,
    deadlines,
)
from sessionclock.core.session import Booking, Role, Session, Status, Timing

# 2026-12-03T18:00:00.000Z: every test starts here.
T0_MS = 1_796_320_800_000
SECOND_MS = 1_000
MINUTE_MS = 60_000

TIMING = Timing(no_show_s=600, warnings_s=(300, 60))

# The booked session: 18:10 to 18:40, lobby from 18:05, no-show at 18:20.
STARTS_MS = T0_MS + 10 * MINUTE_MS
ENDS_MS = STARTS_MS + 30 * MINUTE_MS
LOBBY_MS = STARTS_MS - 5 * MINUTE_MS
NO_SHOW_MS = STARTS_MS + 10 * MINUTE_MS
WARN_300_MS = ENDS_MS - 300 * SECOND_MS
WARN_60_MS = ENDS_MS - 60 * SECOND_MS


def booking(shift_ms: int = 0) -> Booking:
    """The booked session, moved by `shift_ms`."""
    return Booking(
        client_id="u-client",
        companion_id="u-companion",
        starts_at_ms=STARTS_MS + shift_ms,
        ends_at_ms=ENDS_MS + shift_ms,
        lobby_lead_s=300,
    )


def scheduled(session_id: str = "s-1", shift_ms: int = 0) -> Session:
    """A session created at T0, before its lobby opens."""
    return create(session_id, booking(shift_ms), T0_MS, TIMING).after


def waiting(session_id: str = "s-1") -> Session:
    """A session whose lobby has just opened."""
    return settle(scheduled(session_id), LOBBY_MS, TIMING).after


def in_call(session_id: str = "s-1") -> Session:
    """A session whose participants are both ready."""
    session = waiting(session_id)
    for role in Role:
        session = mark_ready(session, role, True, LOBBY_MS, TIMING).after
    assert session.status is Status.READY
    return session


def kinds_and_times(found: list[Deadline]) -> list[tuple[DeadlineKind, int]]:
    """What each deadline is and when, which is what the tests compare."""
    return [(deadline.kind, deadline.at_ms) for deadline in found]


# deadlines()


def test_deadlines_scheduled_lists_every_moment_in_order() -> None:
    """A scheduled session waits for lobby, no-show, warnings and end, in order."""
    found = deadlines(scheduled(), TIMING)

    assert kinds_and_times(found) == [
        (DeadlineKind.LOBBY_OPENS, LOBBY_MS),
        (DeadlineKind.NO_SHOW, NO_SHOW_MS),
        (DeadlineKind.WARNING, WARN_300_MS),
        (DeadlineKind.WARNING, WARN_60_MS),
        (DeadlineKind.ENDS, ENDS_MS),
    ]
    assert [deadline.remaining_s for deadline in found] == [None, None, 300, 60, None]
    assert {deadline.session_id for deadline in found} == {"s-1"}


def test_deadlines_waiting_omits_lobby() -> None:
    """Once the lobby is open its opening is no longer a deadline."""
    found = deadlines(waiting(), TIMING)

    assert [deadline.kind for deadline in found] == [
        DeadlineKind.NO_SHOW,
        DeadlineKind.WARNING,
        DeadlineKind.WARNING,
        DeadlineKind.ENDS,
    ]


def test_deadlines_in_call_omits_no_show() -> None:
    """An open call cannot be a no-show: only its warnings and end remain."""
    found = deadlines(in_call(), TIMING)

    assert kinds_and_times(found) == [
        (DeadlineKind.WARNING, WARN_300_MS),
        (DeadlineKind.WARNING, WARN_60_MS),
        (DeadlineKind.ENDS, ENDS_MS),
    ]


def test_deadlines_short_session_no_show_is_end() -> None:
    """A session shorter than the no-show wait has no separate no-show deadline."""
    short = replace(booking(), ends_at_ms=STARTS_MS + 5 * MINUTE_MS)
    session = create("s-1", short, T0_MS, TIMING).after

    kinds = [deadline.kind for deadline in deadlines(session, TIMING)]

    assert DeadlineKind.NO_SHOW not in kinds
    assert kinds[-1] is DeadlineKind.ENDS


def test_deadlines_unsorted_thresholds_come_out_sorted() -> None:
    """Thresholds configured in any order come out earliest first."""
    reversed_timing = Timing(no_show_s=600, warnings_s=(60, 300))

    found = deadlines(in_call(), reversed_timing)

    assert [deadline.at_ms for deadline in found] == [WARN_300_MS, WARN_60_MS, ENDS_MS]


def test_deadlines_terminal_is_empty() -> None:
    """An expired or cancelled session has no deadlines left."""
    expired = settle(in_call(), ENDS_MS, TIMING).after
    cancelled = cancel(waiting(), LOBBY_MS, TIMING).after

    assert deadlines(expired, TIMING) == []
    assert deadlines(cancelled, TIMING) == []


# DeadlineQueue


def test_queue_empty_has_nothing_due() -> None:
    """An empty queue tracks nothing, has no next moment and nothing due."""
    queue = DeadlineQueue()

    assert len(queue) == 0
    assert queue.next_at_ms() is None
    assert queue.pop_due(ENDS_MS * 2) == []


def test_queue_track_new_session_next_is_earliest() -> None:
    """A tracked session counts once and its earliest deadline comes next."""
    queue = DeadlineQueue()

    assert queue.track(scheduled(), TIMING, T0_MS) is True
    assert len(queue) == 1
    assert queue.next_at_ms() == LOBBY_MS


def test_queue_pop_due_before_first_returns_nothing() -> None:
    """Nothing is due a millisecond before the earliest deadline."""
    queue = DeadlineQueue()
    queue.track(scheduled(), TIMING, T0_MS)

    assert queue.pop_due(LOBBY_MS - 1) == []
    assert queue.next_at_ms() == LOBBY_MS


def test_queue_pop_due_at_deadline_includes_it() -> None:
    """A deadline is due at its own moment, and popping removes it."""
    queue = DeadlineQueue()
    queue.track(scheduled(), TIMING, T0_MS)

    due = queue.pop_due(LOBBY_MS)

    assert kinds_and_times(due) == [(DeadlineKind.LOBBY_OPENS, LOBBY_MS)]
    assert queue.pop_due(LOBBY_MS) == []
    assert queue.next_at_ms() == NO_SHOW_MS


def test_queue_pop_due_late_returns_all_earliest_first() -> None:
    """Popping well after several deadlines returns them all, earliest first."""
    queue = DeadlineQueue()
    queue.track(scheduled(), TIMING, T0_MS)

    due = queue.pop_due(ENDS_MS + MINUTE_MS)

    assert kinds_and_times(due) == kinds_and_times(deadlines(scheduled(), TIMING))
    assert queue.next_at_ms() is None


def test_queue_two_sessions_interleave_by_time() -> None:
    """Deadlines of several sessions come out in one order of time."""
    queue = DeadlineQueue()
    queue.track(scheduled("late", shift_ms=90 * SECOND_MS), TIMING, T0_MS)
    queue.track(scheduled("early"), TIMING, T0_MS)

    due = queue.pop_due(NO_SHOW_MS + 90 * SECOND_MS)

    assert [(deadline.session_id, deadline.kind) for deadline in due] == [
        ("early", DeadlineKind.LOBBY_OPENS),
        ("late", DeadlineKind.LOBBY_OPENS),
        ("early", DeadlineKind.NO_SHOW),
        ("late", DeadlineKind.NO_SHOW),
    ]
    assert len(queue) == 2


def test_queue_same_moment_keeps_tracking_order() -> None:
    """Two sessions due at the same moment come out in the order they were tracked."""
    queue = DeadlineQueue()
    queue.track(scheduled("first"), TIMING, T0_MS)
    queue.track(scheduled("second"), TIMING, T0_MS)

    due = queue.pop_due(LOBBY_MS)

    assert [deadline.session_id for deadline in due] == ["first", "second"]


def test_queue_track_same_version_again_refused() -> None:
    """Tracking a version already queued is refused and queues nothing twice."""
    queue = DeadlineQueue()
    session = scheduled()
    queue.track(session, TIMING, T0_MS)

    assert queue.track(session, TIMING, T0_MS) is False
    assert len(queue.pop_due(ENDS_MS)) == len(deadlines(session, TIMING))


def test_queue_track_older_version_refused() -> None:
    """A version older than the tracked one is refused; the newer one stays."""
    queue = DeadlineQueue()
    older = scheduled()
    newer = settle(older, LOBBY_MS, TIMING).after
    queue.track(newer, TIMING, LOBBY_MS)

    assert queue.track(older, TIMING, LOBBY_MS) is False
    due = queue.pop_due(ENDS_MS)
    assert kinds_and_times(due) == kinds_and_times(deadlines(newer, TIMING))


def test_queue_track_newer_version_drops_stale_deadlines() -> None:
    """Tracking a newer version drops every deadline of the older one."""
    queue = DeadlineQueue()
    older = waiting()
    newer = mark_ready(older, Role.CLIENT, True, LOBBY_MS, TIMING).after
    newer = mark_ready(newer, Role.COMPANION, True, LOBBY_MS, TIMING).after
    queue.track(older, TIMING, LOBBY_MS)

    assert queue.track(newer, TIMING, LOBBY_MS) is True
    assert len(queue) == 1
    due = queue.pop_due(ENDS_MS)
    assert kinds_and_times(due) == [
        (DeadlineKind.WARNING, WARN_300_MS),
        (DeadlineKind.WARNING, WARN_60_MS),
        (DeadlineKind.ENDS, ENDS_MS),
    ]


def test_queue_rebooked_later_fires_nothing_at_old_times() -> None:
    """A session moved later fires nothing at its old moments, only at its new ones."""
    queue = DeadlineQueue()
    older = scheduled()
    moved = rebook(older, booking(shift_ms=60 * MINUTE_MS), T0_MS, TIMING).after
    queue.track(older, TIMING, T0_MS)
    queue.track(moved, TIMING, T0_MS)

    assert queue.pop_due(ENDS_MS) == []
    assert queue.next_at_ms() == LOBBY_MS + 60 * MINUTE_MS


def test_queue_terminal_version_forgets_session() -> None:
    """Tracking a session's terminal version forgets it and all its deadlines."""
    queue = DeadlineQueue()
    session = waiting()
    queue.track(session, TIMING, LOBBY_MS)
    ended = cancel(session, LOBBY_MS + MINUTE_MS, TIMING).after

    assert queue.track(ended, TIMING, LOBBY_MS + MINUTE_MS) is True
    assert len(queue) == 0
    assert queue.next_at_ms() is None
    assert queue.pop_due(ENDS_MS + MINUTE_MS) == []


def test_queue_terminal_untracked_session_not_added() -> None:
    """A session first seen ended is not added, and the queue says nothing changed."""
    queue = DeadlineQueue()
    ended = settle(in_call(), ENDS_MS, TIMING).after

    assert queue.track(ended, TIMING, ENDS_MS) is False
    assert len(queue) == 0
    assert queue.next_at_ms() is None


def test_queue_forget_drops_deadlines() -> None:
    """Forgetting a session drops its deadlines and keeps the others'."""
    queue = DeadlineQueue()
    queue.track(scheduled("gone"), TIMING, T0_MS)
    queue.track(scheduled("kept", shift_ms=SECOND_MS), TIMING, T0_MS)

    queue.forget("gone")
    queue.forget("never-tracked")

    assert len(queue) == 1
    due = queue.pop_due(LOBBY_MS + SECOND_MS)
    assert [deadline.session_id for deadline in due] == ["kept"]


def test_queue_track_late_keeps_only_the_due_warning() -> None:
    """A passed warning is queued while it is the one due, and skipped after that."""
    with_100_s_left = DeadlineQueue()
    with_30_s_left = DeadlineQueue()

    with_100_s_left.track(in_call(), TIMING, ENDS_MS - 100 * SECOND_MS)
    with_30_s_left.track(in_call(), TIMING, ENDS_MS - 30 * SECOND_MS)

    assert kinds_and_times(with_100_s_left.pop_due(ENDS_MS)) == [
        (DeadlineKind.WARNING, WARN_300_MS),
        (DeadlineKind.WARNING, WARN_60_MS),
        (DeadlineKind.ENDS, ENDS_MS),
    ]
    assert kinds_and_times(with_30_s_left.pop_due(ENDS_MS)) == [
        (DeadlineKind.WARNING, WARN_60_MS),
        (DeadlineKind.ENDS, ENDS_MS),
    ]


def test_queue_track_late_keeps_passed_state_deadlines() -> None:
    """A lobby or no-show moment already passed is kept, so it fires at once."""
    queue = DeadlineQueue()
    session = scheduled()

    queue.track(session, TIMING, NO_SHOW_MS + MINUTE_MS)

    assert kinds_and_times(queue.pop_due(NO_SHOW_MS + MINUTE_MS)) == [
        (DeadlineKind.LOBBY_OPENS, LOBBY_MS),
        (DeadlineKind.NO_SHOW, NO_SHOW_MS),
    ]


def test_queue_track_after_end_keeps_end() -> None:
    """The end is queued even when it has passed, so the session still expires."""
    queue = DeadlineQueue()

    queue.track(in_call(), TIMING, ENDS_MS + MINUTE_MS)

    assert kinds_and_times(queue.pop_due(ENDS_MS + MINUTE_MS)) == [
        (DeadlineKind.ENDS, ENDS_MS)
    ]
