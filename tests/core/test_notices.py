"""What a change tells the outside world: webhooks for platforms, write-backs."""

from __future__ import annotations

from dataclasses import replace

from sessionclock.core import machine
from sessionclock.core.machine import Event
from sessionclock.core.notices import (
    NoticePolicy,
    Outcome,
    Target,
    event_id,
    outcome_of,
)
from sessionclock.core.session import (
    Booking,
    BookingStatus,
    ExpiredReason,
    Role,
    Session,
    Status,
    Timing,
)
from tests.helpers import MINUTE_MS, T0_MS

TIMING = Timing(no_show_s=600, warnings_s=(300, 60))
BOTH = NoticePolicy(webhooks=True, write_back=True)


def _session(status: BookingStatus = BookingStatus.PENDING) -> Session:
    booking = Booking("c-1", "p-1", T0_MS, T0_MS + 30 * MINUTE_MS, 300, status)
    return machine.create("b-1", booking, T0_MS - MINUTE_MS, TIMING).after


def test_companion_ready_on_pending_booking_writes_a_confirmation() -> None:
    """The companion's mark yields a participant_ready webhook and a confirmation."""
    before = _session()
    change = machine.mark_ready(before, Role.COMPANION, True, T0_MS, TIMING)
    notices = BOTH.for_change(before, change.after, change.events, T0_MS)
    kinds = [(notice.target, notice.type) for notice in notices]
    assert kinds == [
        (Target.WEBHOOK, "participant_ready"),
        (Target.BOOKING_SOURCE, "booking_confirmed"),
    ]
    ready = notices[0].payload
    assert ready["data"] == {"role": "companion", "user_id": "p-1"}
    assert ready["session"]["participants"]["companion"]["ready"] is True
    assert notices[1].payload == {"booking_status": "confirmed"}


def test_both_ready_sends_participant_ready_and_ready() -> None:
    """The second mark yields participant_ready for it, then ready for the call."""
    first = machine.mark_ready(_session(), Role.CLIENT, True, T0_MS, TIMING).after
    change = machine.mark_ready(first, Role.COMPANION, True, T0_MS, TIMING)
    notices = NoticePolicy(webhooks=True).for_change(
        first, change.after, change.events, T0_MS
    )
    assert [notice.type for notice in notices] == ["participant_ready", "ready"]


def test_no_show_expiry_names_who_was_absent() -> None:
    """An expiry as a no-show carries the reason, the absent roles and the outcome."""
    before = machine.mark_ready(_session(), Role.CLIENT, True, T0_MS, TIMING).after
    later_ms = T0_MS + 11 * MINUTE_MS
    change = machine.settle(before, later_ms, TIMING)
    notices = BOTH.for_change(before, change.after, change.events, later_ms)
    expired = next(n for n in notices if n.type == "expired")
    assert expired.payload["data"] == {
        "reason": "no_show",
        "absent": ["companion"],
        "absent_user_ids": ["p-1"],
        "outcome": "no_show_companion",
    }
    outcome = next(n for n in notices if n.type == "outcome")
    assert outcome.payload == {"outcome": "no_show_companion"}


def test_bulk_expiry_without_before_still_notifies() -> None:
    """A set-based expiry (no `before`) still yields its webhook and outcome."""
    ended = replace(
        _session(),
        status=Status.EXPIRED,
        expired_reason=ExpiredReason.TIME_UP,
        version=3,
    )
    notices = BOTH.for_change(None, ended, (Event.EXPIRED,), T0_MS)
    assert [n.type for n in notices] == ["expired", "outcome"]
    assert notices[1].payload == {"outcome": "finished"}


def test_session_created_already_ended_notifies_nobody() -> None:
    """A booking synced from history (created cancelled) writes no notice."""
    booking = Booking(
        "c-1", "p-1", T0_MS, T0_MS + MINUTE_MS, 300, BookingStatus.CANCELLED
    )
    change = machine.create("b-2", booking, T0_MS, TIMING)
    assert BOTH.for_change(None, change.after, change.events, T0_MS) == []


def test_policy_without_targets_writes_nothing() -> None:
    """With no webhook URL and a local source, changes leave the outbox empty."""
    before = _session()
    change = machine.mark_ready(before, Role.COMPANION, True, T0_MS, TIMING)
    assert NoticePolicy().for_change(before, change.after, change.events, T0_MS) == []


def test_warning_has_one_id_per_threshold_and_end() -> None:
    """The same warning gives the same event id; another threshold another one."""
    session = _session()
    first = BOTH.for_warning(session, 300, T0_MS)
    again = BOTH.for_warning(session, 300, T0_MS + 5)
    other = BOTH.for_warning(session, 60, T0_MS)
    assert first[0].event_id == again[0].event_id != other[0].event_id
    assert first[0].payload["data"] == {"remaining_s": 300}


def test_event_ids_differ_by_target_session_and_key() -> None:
    """Event ids are stable for the same inputs and distinct for any other."""
    ids = {
        event_id(Target.WEBHOOK, "b-1", "v2:ready"),
        event_id(Target.BOOKING_SOURCE, "b-1", "v2:ready"),
        event_id(Target.WEBHOOK, "b-2", "v2:ready"),
        event_id(Target.WEBHOOK, "b-1", "v3:ready"),
    }
    assert len(ids) == 4
    assert event_id(Target.WEBHOOK, "b-1", "v2:ready") in ids


def test_outcome_of_each_ending() -> None:
    """Each way a session ends maps to one outcome; a live session has none."""
    live = _session()
    expired = replace(live, status=Status.EXPIRED)
    assert outcome_of(live) is None
    assert outcome_of(replace(live, status=Status.CANCELLED)) is Outcome.CANCELLED
    assert (
        outcome_of(replace(expired, expired_reason=ExpiredReason.TIME_UP))
        is Outcome.FINISHED
    )
    no_show = replace(expired, expired_reason=ExpiredReason.NO_SHOW)
    assert (
        outcome_of(replace(no_show, absent=(Role.CLIENT, Role.COMPANION)))
        is Outcome.NO_SHOW_BOTH
    )
    assert outcome_of(replace(no_show, absent=(Role.CLIENT,))) is Outcome.NO_SHOW_CLIENT
