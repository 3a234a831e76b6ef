"""The session state machine: what time and each input do to one session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from sessionclock.core.clock import to_iso
from sessionclock.core.machine import (
    Change,
    Event,
    cancel,
    create,
    mark_ready,
    no_show_at_ms,
    rebook,
    settle,
    warning_due,
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
from sessionclock.errors import (
    CallAlreadyOpen,
    LobbyNotOpen,
    SessionEnded,
)

# 2026-12-03T18:00:00.000Z: every test starts here.
T0_MS = 1_796_320_800_000
SECOND_MS = 1_000
MINUTE_MS = 60_000

SESSION_ID = "s-1"
CLIENT = "u-client"
COMPANION = "u-companion"
TIMING = Timing(no_show_s=600, warnings_s=(300, 60))

# The booked session: 18:10 to 18:40, lobby from 18:05, no-show at 18:20.
STARTS_MS = T0_MS + 10 * MINUTE_MS
ENDS_MS = STARTS_MS + 30 * MINUTE_MS
LOBBY_MS = STARTS_MS - 5 * MINUTE_MS
NO_SHOW_MS = STARTS_MS + 10 * MINUTE_MS
# Inside the lobby, before the start.
IN_LOBBY_MS = LOBBY_MS + MINUTE_MS

BOOKING = Booking(
    client_id=CLIENT,
    companion_id=COMPANION,
    starts_at_ms=STARTS_MS,
    ends_at_ms=ENDS_MS,
    lobby_lead_s=300,
)


def scheduled(booking: Booking = BOOKING) -> Session:
    """A session created at T0, before its lobby opens."""
    session = create(SESSION_ID, booking, T0_MS, TIMING).after
    assert session.status is Status.SCHEDULED
    return session


def waiting(booking: Booking = BOOKING) -> Session:
    """A session whose lobby has just opened."""
    session = settle(scheduled(booking), LOBBY_MS, TIMING).after
    assert session.status is Status.WAITING
    return session


def accepted(change: Change) -> Session:
    """The session after a change that was not rejected."""
    assert change.rejection is None, change.rejection
    return change.after


def marked(session: Session, *roles: Role, now_ms: int = IN_LOBBY_MS) -> Session:
    """The session after each role marked itself ready at `now_ms`."""
    for role in roles:
        session = accepted(mark_ready(session, role, True, now_ms, TIMING))
    return session


def in_call(booking: Booking = BOOKING) -> Session:
    """A session whose participants are both ready, so the call is open."""
    session = marked(waiting(booking), Role.CLIENT, Role.COMPANION)
    assert session.status is Status.READY
    return session


def assert_no_op(change: Change, session: Session) -> None:
    """The change did nothing: same session, same version, no events."""
    assert change.events == ()
    assert change.after == session
    assert change.after.version == session.version


# create


def test_create_before_lobby_is_scheduled_at_version_one() -> None:
    """A session booked ahead of its lobby is scheduled, unmarked, at version 1."""
    change = create(SESSION_ID, BOOKING, T0_MS, TIMING)

    assert change.before is None
    assert change.events == (Event.CREATED,)
    session = change.after
    assert session.status is Status.SCHEDULED
    assert session.version == 1
    assert session.booking() == BOOKING
    assert session.lobby_opens_at_ms == LOBBY_MS
    assert session.not_ready() == (Role.CLIENT, Role.COMPANION)
    assert session.expired_reason is None
    assert session.ended_at_ms is None


def test_create_inside_lobby_opens_it_at_version_one() -> None:
    """A session booked when its lobby is already open starts out waiting."""
    change = create(SESSION_ID, BOOKING, IN_LOBBY_MS, TIMING)

    assert change.events == (Event.CREATED, Event.LOBBY_OPENED)
    assert change.after.status is Status.WAITING
    assert change.after.version == 1


def test_create_after_end_expires_as_no_show() -> None:
    """A session booked after its end is born expired, with both roles absent."""
    change = create(SESSION_ID, BOOKING, ENDS_MS + MINUTE_MS, TIMING)

    assert change.events == (Event.CREATED, Event.EXPIRED)
    session = change.after
    assert session.status is Status.EXPIRED
    assert session.expired_reason is ExpiredReason.NO_SHOW
    assert session.absent == (Role.CLIENT, Role.COMPANION)
    assert session.ended_at_ms == ENDS_MS + MINUTE_MS
    assert session.version == 1


def test_create_pending_booking_keeps_pending() -> None:
    """A booking created as pending stays pending until somebody confirms it."""
    pending = replace(BOOKING, booking_status=BookingStatus.PENDING)

    assert scheduled(pending).booking_status is BookingStatus.PENDING


# settle: the lobby


def test_settle_before_lobby_changes_nothing() -> None:
    """One millisecond before the lobby opens, time changes nothing."""
    session = scheduled()

    assert_no_op(settle(session, LOBBY_MS - 1, TIMING), session)


def test_settle_at_lobby_open_opens_lobby() -> None:
    """At the lobby's opening moment the session starts waiting, one version up."""
    session = scheduled()

    change = settle(session, LOBBY_MS, TIMING)

    assert change.before == session
    assert change.events == (Event.LOBBY_OPENED,)
    assert change.after.status is Status.WAITING
    assert change.after.version == session.version + 1
    assert change.rejection is None


def test_settle_open_lobby_again_changes_nothing() -> None:
    """Settling a session that time has already settled is a no-op."""
    session = waiting()

    assert_no_op(settle(session, IN_LOBBY_MS, TIMING), session)


def test_settle_zero_lead_opens_lobby_at_start() -> None:
    """With no lobby lead, the lobby opens exactly at the booked start."""
    session = scheduled(replace(BOOKING, lobby_lead_s=0))

    assert settle(session, STARTS_MS - 1, TIMING).after.status is Status.SCHEDULED
    assert settle(session, STARTS_MS, TIMING).after.status is Status.WAITING


# settle: no-show


def test_no_show_at_ms_is_start_plus_wait() -> None:
    """The no-show moment is the start plus the configured wait."""
    assert no_show_at_ms(scheduled(), TIMING) == NO_SHOW_MS


def test_no_show_at_ms_short_session_capped_at_end() -> None:
    """A session shorter than the no-show wait has its no-show moment at its end."""
    short = scheduled(replace(BOOKING, ends_at_ms=STARTS_MS + 5 * MINUTE_MS))

    assert no_show_at_ms(short, TIMING) == STARTS_MS + 5 * MINUTE_MS


def test_settle_before_no_show_keeps_waiting() -> None:
    """One millisecond before the no-show moment, a session with nobody ready waits."""
    session = waiting()

    assert_no_op(settle(session, NO_SHOW_MS - 1, TIMING), session)


def test_settle_at_no_show_both_absent_expires() -> None:
    """At the no-show moment with nobody ready, both roles are recorded absent."""
    session = waiting()

    change = settle(session, NO_SHOW_MS, TIMING)

    assert change.events == (Event.EXPIRED,)
    expired = change.after
    assert expired.status is Status.EXPIRED
    assert expired.expired_reason is ExpiredReason.NO_SHOW
    assert expired.absent == (Role.CLIENT, Role.COMPANION)
    assert expired.ended_at_ms == NO_SHOW_MS
    assert expired.version == session.version + 1


@pytest.mark.parametrize(
    ("came", "absent"),
    [(Role.CLIENT, Role.COMPANION), (Role.COMPANION, Role.CLIENT)],
)
def test_settle_at_no_show_one_absent_records_that_role(
    came: Role, absent: Role
) -> None:
    """At the no-show moment with one role ready, only the other is recorded absent."""
    session = marked(waiting(), came)

    expired = settle(session, NO_SHOW_MS, TIMING).after

    assert expired.status is Status.EXPIRED
    assert expired.expired_reason is ExpiredReason.NO_SHOW
    assert expired.absent == (absent,)
    assert expired.ready_at_ms(came) == IN_LOBBY_MS


def test_settle_scheduled_past_no_show_expires_in_one_step() -> None:
    """A scheduled session settled after its no-show moment expires in one change."""
    session = scheduled()

    change = settle(session, NO_SHOW_MS + MINUTE_MS, TIMING)

    assert change.events == (Event.EXPIRED,)
    assert change.after.expired_reason is ExpiredReason.NO_SHOW
    assert change.after.version == session.version + 1


def test_settle_ready_past_no_show_stays_ready() -> None:
    """A session whose call is open does not expire at the no-show moment."""
    session = in_call()

    assert_no_op(settle(session, NO_SHOW_MS + MINUTE_MS, TIMING), session)


# settle: the end


def test_settle_ready_at_end_expires_time_up() -> None:
    """At ends_at, an open call expires with time_up and nobody absent."""
    session = in_call()

    change = settle(session, ENDS_MS, TIMING)

    assert change.events == (Event.EXPIRED,)
    expired = change.after
    assert expired.status is Status.EXPIRED
    assert expired.expired_reason is ExpiredReason.TIME_UP
    assert expired.absent == ()
    assert expired.ended_at_ms == ENDS_MS
    assert expired.version == session.version + 1


def test_settle_ready_before_end_stays_ready() -> None:
    """One millisecond before ends_at, an open call is still open."""
    session = in_call()

    assert_no_op(settle(session, ENDS_MS - 1, TIMING), session)


def test_settle_waiting_at_end_expires_no_show() -> None:
    """At ends_at a session that never reached ready is a no-show, not time_up."""
    patient = Timing(no_show_s=3600, warnings_s=(300, 60))
    session = marked(waiting(), Role.COMPANION)

    expired = settle(session, ENDS_MS, patient).after

    assert expired.status is Status.EXPIRED
    assert expired.expired_reason is ExpiredReason.NO_SHOW
    assert expired.absent == (Role.CLIENT,)


def test_settle_expired_session_changes_nothing() -> None:
    """Time does nothing more to an expired session."""
    session = settle(in_call(), ENDS_MS, TIMING).after

    assert_no_op(settle(session, ENDS_MS + 60 * MINUTE_MS, TIMING), session)


# mark_ready


def test_mark_ready_before_lobby_rejected_lobby_not_open() -> None:
    """A ready mark before the lobby opens is refused and changes nothing."""
    session = scheduled()

    change = mark_ready(session, Role.CLIENT, True, LOBBY_MS - 1, TIMING)

    assert isinstance(change.rejection, LobbyNotOpen)
    assert change.rejection.lobby_opens_at == to_iso(LOBBY_MS)
    assert_no_op(change, session)


def test_mark_ready_in_lobby_records_time() -> None:
    """A ready mark in the lobby records the moment and keeps the session waiting."""
    session = waiting()

    change = mark_ready(session, Role.CLIENT, True, IN_LOBBY_MS, TIMING)

    assert change.rejection is None
    assert change.events == (Event.PARTICIPANT_READY,)
    assert change.after.client_ready_at_ms == IN_LOBBY_MS
    assert change.after.companion_ready_at_ms is None
    assert change.after.status is Status.WAITING
    assert change.after.version == session.version + 1


def test_mark_ready_as_lobby_opens_one_version_up() -> None:
    """A mark that also opens the lobby reports both, yet adds exactly one version."""
    session = scheduled()

    change = mark_ready(session, Role.COMPANION, True, LOBBY_MS, TIMING)

    assert change.rejection is None
    assert change.events == (Event.LOBBY_OPENED, Event.PARTICIPANT_READY)
    assert change.after.status is Status.WAITING
    assert change.after.version == session.version + 1


def test_mark_ready_both_opens_call() -> None:
    """The second ready mark opens the call for both participants."""
    session = marked(waiting(), Role.CLIENT)

    change = mark_ready(session, Role.COMPANION, True, IN_LOBBY_MS + 1, TIMING)

    assert change.events == (Event.PARTICIPANT_READY, Event.READY)
    assert change.after.status is Status.READY
    assert change.after.client_ready_at_ms == IN_LOBBY_MS
    assert change.after.companion_ready_at_ms == IN_LOBBY_MS + 1
    assert change.after.version == session.version + 1


def test_mark_ready_again_is_noop() -> None:
    """Saying ready twice keeps the first moment and changes nothing."""
    session = marked(waiting(), Role.CLIENT)

    change = mark_ready(session, Role.CLIENT, True, IN_LOBBY_MS + MINUTE_MS, TIMING)

    assert change.rejection is None
    assert_no_op(change, session)


def test_mark_ready_again_in_call_is_noop() -> None:
    """Saying ready again while the call is open is accepted and changes nothing."""
    session = in_call()

    change = mark_ready(session, Role.COMPANION, True, STARTS_MS, TIMING)

    assert change.rejection is None
    assert_no_op(change, session)


def test_mark_ready_companion_confirms_pending_booking() -> None:
    """The companion's ready mark turns a pending booking into a confirmed one."""
    session = waiting(replace(BOOKING, booking_status=BookingStatus.PENDING))

    change = mark_ready(session, Role.COMPANION, True, IN_LOBBY_MS, TIMING)

    assert change.events == (Event.PARTICIPANT_READY, Event.BOOKING_CONFIRMED)
    assert change.after.booking_status is BookingStatus.CONFIRMED
    assert change.after.version == session.version + 1


def test_mark_ready_client_leaves_pending_booking() -> None:
    """The client's ready mark does not confirm a pending booking."""
    session = waiting(replace(BOOKING, booking_status=BookingStatus.PENDING))

    change = mark_ready(session, Role.CLIENT, True, IN_LOBBY_MS, TIMING)

    assert change.events == (Event.PARTICIPANT_READY,)
    assert change.after.booking_status is BookingStatus.PENDING


def test_mark_ready_companion_last_confirms_and_opens_call() -> None:
    """A companion who is last to mark ready confirms the booking and opens the call."""
    pending = replace(BOOKING, booking_status=BookingStatus.PENDING)
    session = marked(waiting(pending), Role.CLIENT)

    change = mark_ready(session, Role.COMPANION, True, IN_LOBBY_MS, TIMING)

    assert change.events == (
        Event.PARTICIPANT_READY,
        Event.BOOKING_CONFIRMED,
        Event.READY,
    )
    assert change.after.status is Status.READY
    assert change.after.booking_status is BookingStatus.CONFIRMED
    assert change.after.version == session.version + 1


def test_mark_ready_companion_confirmed_booking_no_confirm_event() -> None:
    """On a booking that is already confirmed, the companion's mark confirms nothing."""
    session = waiting()

    change = mark_ready(session, Role.COMPANION, True, IN_LOBBY_MS, TIMING)

    assert change.events == (Event.PARTICIPANT_READY,)


def test_mark_unready_in_waiting_clears_mark() -> None:
    """Taking back a ready mark in the lobby clears it, one version up."""
    session = marked(waiting(), Role.CLIENT)

    change = mark_ready(session, Role.CLIENT, False, IN_LOBBY_MS + 1, TIMING)

    assert change.rejection is None
    assert change.events == (Event.PARTICIPANT_UNREADY,)
    assert change.after.client_ready_at_ms is None
    assert change.after.status is Status.WAITING
    assert change.after.version == session.version + 1


def test_mark_unready_not_marked_is_noop() -> None:
    """Taking back a mark that was never given changes nothing."""
    session = waiting()

    change = mark_ready(session, Role.COMPANION, False, IN_LOBBY_MS, TIMING)

    assert change.rejection is None
    assert_no_op(change, session)


@pytest.mark.parametrize("role", list(Role))
def test_mark_unready_in_call_rejected_call_already_open(role: Role) -> None:
    """Once the call is open, neither participant can take back its mark."""
    session = in_call()

    change = mark_ready(session, role, False, STARTS_MS, TIMING)

    assert isinstance(change.rejection, CallAlreadyOpen)
    assert change.rejection.session_id == SESSION_ID
    assert_no_op(change, session)


def test_mark_ready_after_end_rejected_session_ended() -> None:
    """A ready mark on an expired session is refused and changes nothing."""
    session = settle(waiting(), NO_SHOW_MS, TIMING).after

    change = mark_ready(session, Role.CLIENT, True, NO_SHOW_MS + 1, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert change.rejection.status == "expired"
    assert_no_op(change, session)


def test_mark_ready_cancelled_rejected_session_ended() -> None:
    """A ready mark on a cancelled session is refused and changes nothing."""
    session = accepted(cancel(waiting(), IN_LOBBY_MS, TIMING))

    change = mark_ready(session, Role.COMPANION, True, IN_LOBBY_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert change.rejection.status == "cancelled"
    assert_no_op(change, session)


def test_mark_ready_rejection_detail_names_status_plainly() -> None:
    """The refusal's message names the status as the contract spells it."""
    session = settle(waiting(), NO_SHOW_MS, TIMING).after

    change = mark_ready(session, Role.CLIENT, True, NO_SHOW_MS, TIMING)

    assert change.rejection is not None
    assert change.rejection.detail == "session 's-1' has ended (status 'expired')"


def test_mark_ready_overdue_carries_expiry_and_rejection() -> None:
    """A mark on a session time has expired returns the expiry, then the refusal."""
    session = marked(waiting(), Role.CLIENT)

    change = mark_ready(session, Role.COMPANION, True, NO_SHOW_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert change.events == (Event.EXPIRED,)
    assert change.after.status is Status.EXPIRED
    assert change.after.expired_reason is ExpiredReason.NO_SHOW
    assert change.after.absent == (Role.COMPANION,)
    assert change.after.companion_ready_at_ms is None
    assert change.after.version == session.version + 1


def test_mark_unready_at_end_of_call_carries_time_up() -> None:
    """Taking back a mark at ends_at returns the time_up expiry with the refusal."""
    session = in_call()

    change = mark_ready(session, Role.CLIENT, False, ENDS_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert change.events == (Event.EXPIRED,)
    assert change.after.expired_reason is ExpiredReason.TIME_UP
    assert change.after.version == session.version + 1


# cancel


@pytest.mark.parametrize(
    ("make", "now_ms"),
    [(scheduled, T0_MS), (waiting, IN_LOBBY_MS), (in_call, STARTS_MS)],
)
def test_cancel_live_session_cancels(make: Callable[[], Session], now_ms: int) -> None:
    """Cancelling a live session ends it as cancelled, one version up."""
    session = make()

    change = cancel(session, now_ms, TIMING)

    assert change.rejection is None
    assert change.events == (Event.CANCELLED,)
    cancelled = change.after
    assert cancelled.status is Status.CANCELLED
    assert cancelled.booking_status is BookingStatus.CANCELLED
    assert cancelled.expired_reason is ExpiredReason.CANCELLED
    assert cancelled.absent == ()
    assert cancelled.ended_at_ms == now_ms
    assert cancelled.version == session.version + 1


def test_cancel_as_lobby_opens_one_version_up() -> None:
    """A cancel that also sees the lobby open reports both, yet adds one version."""
    session = scheduled()

    change = cancel(session, LOBBY_MS, TIMING)

    assert change.events == (Event.LOBBY_OPENED, Event.CANCELLED)
    assert change.after.status is Status.CANCELLED
    assert change.after.version == session.version + 1


def test_cancel_twice_is_noop() -> None:
    """Cancelling a cancelled session is accepted and changes nothing."""
    session = accepted(cancel(waiting(), IN_LOBBY_MS, TIMING))

    change = cancel(session, IN_LOBBY_MS + MINUTE_MS, TIMING)

    assert change.rejection is None
    assert_no_op(change, session)


def test_cancel_expired_rejected_session_ended() -> None:
    """Cancelling an expired session is refused and changes nothing."""
    session = settle(in_call(), ENDS_MS, TIMING).after

    change = cancel(session, ENDS_MS + MINUTE_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert_no_op(change, session)


def test_cancel_overdue_carries_expiry_and_rejection() -> None:
    """Cancelling a session time has expired returns the expiry with the refusal."""
    session = waiting()

    change = cancel(session, NO_SHOW_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert change.events == (Event.EXPIRED,)
    assert change.after.status is Status.EXPIRED
    assert change.after.expired_reason is ExpiredReason.NO_SHOW
    assert change.after.version == session.version + 1


# rebook


def test_rebook_same_booking_before_lobby_is_noop() -> None:
    """The same booking again, before the lobby opens, changes nothing."""
    session = scheduled()

    assert_no_op(rebook(session, BOOKING, T0_MS + MINUTE_MS, TIMING), session)


def test_rebook_same_booking_settles_time() -> None:
    """The same booking again applies what time alone changed, like settle."""
    session = scheduled()

    change = rebook(session, BOOKING, LOBBY_MS, TIMING)

    assert change == settle(session, LOBBY_MS, TIMING)
    assert change.after.status is Status.WAITING


def test_rebook_replaced_client_loses_mark() -> None:
    """A client replaced during the call loses its mark; the companion keeps its own."""
    session = in_call()
    moved = replace(BOOKING, client_id="u-client-2")

    change = rebook(session, moved, STARTS_MS, TIMING)

    assert change.rejection is None
    assert change.events == (Event.REBOOKED,)
    after = change.after
    assert after.client_id == "u-client-2"
    assert after.client_ready_at_ms is None
    assert after.companion_ready_at_ms == IN_LOBBY_MS
    assert after.status is Status.WAITING
    assert after.version == session.version + 1


def test_rebook_replaced_companion_loses_mark() -> None:
    """A replaced companion loses its mark; the client keeps its own."""
    session = marked(waiting(), Role.CLIENT, Role.COMPANION)
    moved = replace(BOOKING, companion_id="u-companion-2")

    after = accepted(rebook(session, moved, STARTS_MS, TIMING))

    assert after.companion_ready_at_ms is None
    assert after.client_ready_at_ms == IN_LOBBY_MS
    assert after.status is Status.WAITING


def test_rebook_moved_far_away_is_scheduled_with_marks_cleared() -> None:
    """A session moved so late that its lobby is closed again starts over unmarked."""
    session = in_call()
    next_day = replace(
        BOOKING,
        starts_at_ms=STARTS_MS + 24 * 60 * MINUTE_MS,
        ends_at_ms=ENDS_MS + 24 * 60 * MINUTE_MS,
    )

    change = rebook(session, next_day, STARTS_MS, TIMING)

    assert change.events == (Event.REBOOKED,)
    after = change.after
    assert after.status is Status.SCHEDULED
    assert after.client_ready_at_ms is None
    assert after.companion_ready_at_ms is None
    assert after.starts_at_ms == STARTS_MS + 24 * 60 * MINUTE_MS
    assert after.version == session.version + 1


def test_rebook_small_shift_in_lobby_keeps_marks() -> None:
    """A shift that keeps the lobby open keeps the ready marks where they were."""
    session = marked(waiting(), Role.CLIENT)
    sooner = replace(
        BOOKING,
        starts_at_ms=STARTS_MS - 2 * MINUTE_MS,
        ends_at_ms=ENDS_MS - 2 * MINUTE_MS,
    )

    after = accepted(rebook(session, sooner, IN_LOBBY_MS, TIMING))

    assert after.status is Status.WAITING
    assert after.client_ready_at_ms == IN_LOBBY_MS
    assert after.ends_at_ms == ENDS_MS - 2 * MINUTE_MS


def test_rebook_longer_call_stays_ready() -> None:
    """Extending an open call keeps it open until the new end."""
    session = in_call()
    longer = replace(BOOKING, ends_at_ms=ENDS_MS + 15 * MINUTE_MS)

    after = accepted(rebook(session, longer, ENDS_MS - MINUTE_MS, TIMING))

    assert after.status is Status.READY
    assert settle(after, ENDS_MS, TIMING).after.status is Status.READY
    assert settle(after, ENDS_MS + 15 * MINUTE_MS, TIMING).after.status is (
        Status.EXPIRED
    )


def test_rebook_earlier_start_opens_lobby() -> None:
    """A scheduled session moved close enough to now has its lobby open."""
    session = scheduled()
    sooner = replace(
        BOOKING,
        starts_at_ms=T0_MS + 2 * MINUTE_MS,
        ends_at_ms=T0_MS + 32 * MINUTE_MS,
    )

    change = rebook(session, sooner, T0_MS, TIMING)

    assert Event.REBOOKED in change.events
    assert change.after.status is Status.WAITING
    assert change.after.version == session.version + 1


def test_rebook_end_moved_into_past_expires() -> None:
    """A call whose new end has already passed expires in the same change."""
    session = in_call()
    shorter = replace(BOOKING, ends_at_ms=STARTS_MS + MINUTE_MS)

    change = rebook(session, shorter, STARTS_MS + 2 * MINUTE_MS, TIMING)

    assert change.events == (Event.REBOOKED, Event.EXPIRED)
    assert change.after.status is Status.EXPIRED
    assert change.after.expired_reason is ExpiredReason.TIME_UP
    assert change.after.version == session.version + 1


def test_rebook_pending_to_confirmed_updates_booking_status() -> None:
    """A booking confirmed by the platform is confirmed on its session."""
    session = waiting(replace(BOOKING, booking_status=BookingStatus.PENDING))

    after = accepted(rebook(session, BOOKING, IN_LOBBY_MS, TIMING))

    assert after.booking_status is BookingStatus.CONFIRMED
    assert after.status is Status.WAITING


def test_rebook_cancelled_booking_cancels() -> None:
    """A booking that the platform cancelled cancels its live session."""
    session = marked(waiting(), Role.CLIENT)
    called_off = replace(BOOKING, booking_status=BookingStatus.CANCELLED)

    change = rebook(session, called_off, IN_LOBBY_MS, TIMING)

    assert change.rejection is None
    assert change.events == (Event.CANCELLED,)
    assert change.after.status is Status.CANCELLED
    assert change.after.expired_reason is ExpiredReason.CANCELLED
    assert change.after.version == session.version + 1


def test_rebook_expired_same_booking_is_noop() -> None:
    """The same booking again on an expired session changes nothing."""
    session = settle(in_call(), ENDS_MS, TIMING).after

    change = rebook(session, BOOKING, ENDS_MS + MINUTE_MS, TIMING)

    assert change.rejection is None
    assert_no_op(change, session)


def test_rebook_expired_other_booking_rejected_as_history() -> None:
    """Another booking on an expired session is refused: it is history."""
    session = settle(in_call(), ENDS_MS, TIMING).after
    later = replace(BOOKING, ends_at_ms=ENDS_MS + 30 * MINUTE_MS)

    change = rebook(session, later, ENDS_MS + MINUTE_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert_no_op(change, session)


def test_rebook_cancelled_again_cancelled_is_noop() -> None:
    """A cancelled booking synced again onto its cancelled session changes nothing."""
    session = accepted(cancel(waiting(), IN_LOBBY_MS, TIMING))
    called_off = replace(BOOKING, booking_status=BookingStatus.CANCELLED)

    change = rebook(session, called_off, IN_LOBBY_MS + MINUTE_MS, TIMING)

    assert change.rejection is None
    assert_no_op(change, session)


def test_rebook_cancelled_other_booking_rejected_as_history() -> None:
    """A live booking synced onto a cancelled session is refused: it is history."""
    session = accepted(cancel(waiting(), IN_LOBBY_MS, TIMING))

    change = rebook(session, BOOKING, IN_LOBBY_MS + MINUTE_MS, TIMING)

    assert isinstance(change.rejection, SessionEnded)
    assert_no_op(change, session)


def test_rebook_cancelled_booking_after_end_expires_as_settled() -> None:
    """A cancel synced after the end finds the session expired, sweep or no sweep."""
    session = waiting()
    called_off = replace(BOOKING, booking_status=BookingStatus.CANCELLED)
    after_end_ms = ENDS_MS + MINUTE_MS
    swept = settle(session, after_end_ms, TIMING).after

    direct = rebook(session, called_off, after_end_ms, TIMING)
    via_sweep = rebook(swept, called_off, after_end_ms, TIMING)

    assert via_sweep.after.status is Status.EXPIRED
    assert direct.after.status is via_sweep.after.status
    assert direct.after.expired_reason is via_sweep.after.expired_reason
    assert isinstance(direct.rejection, SessionEnded)


def test_rebook_longer_call_after_end_expires_as_settled() -> None:
    """An extension synced after the call ended finds it expired, sweep or no sweep."""
    session = in_call()
    longer = replace(BOOKING, ends_at_ms=ENDS_MS + 30 * MINUTE_MS)
    after_end_ms = ENDS_MS + MINUTE_MS
    swept = settle(session, after_end_ms, TIMING).after

    direct = rebook(session, longer, after_end_ms, TIMING)
    via_sweep = rebook(swept, longer, after_end_ms, TIMING)

    assert via_sweep.after.status is Status.EXPIRED
    assert direct.after.status is via_sweep.after.status
    assert direct.after.expired_reason is ExpiredReason.TIME_UP
    assert isinstance(direct.rejection, SessionEnded)


# warning_due


def test_warning_due_scheduled_is_none() -> None:
    """A session whose lobby is not open raises no warning."""
    assert warning_due(scheduled(), ENDS_MS - MINUTE_MS, TIMING) is None


@pytest.mark.parametrize(
    ("remaining_ms", "expected"),
    [
        (300 * SECOND_MS + 1, None),
        (300 * SECOND_MS, 300),
        (60 * SECOND_MS + 1, 300),
        (60 * SECOND_MS, 60),
        (1, 60),
        (0, None),
        (-1, None),
    ],
)
def test_warning_due_in_call_latest_threshold(
    remaining_ms: int, expected: int | None
) -> None:
    """An open call reports the threshold it most recently crossed, none at the end."""
    assert warning_due(in_call(), ENDS_MS - remaining_ms, TIMING) == expected


def test_warning_due_waiting_reports_threshold() -> None:
    """A session still waiting in its lobby gets the warnings too."""
    patient = Timing(no_show_s=3600, warnings_s=(300, 60))

    assert warning_due(waiting(), ENDS_MS - 200 * SECOND_MS, patient) == 300


def test_warning_due_unsorted_thresholds_same_answer() -> None:
    """The order in which thresholds are configured does not matter."""
    reversed_timing = Timing(no_show_s=600, warnings_s=(60, 300))
    session = in_call()

    assert warning_due(session, ENDS_MS - 30 * SECOND_MS, reversed_timing) == 60
    assert warning_due(session, ENDS_MS - 90 * SECOND_MS, reversed_timing) == 300


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.CANCELLED])
def test_warning_due_ended_is_none(status: Status) -> None:
    """An ended session raises no warning, whatever the time."""
    session = in_call()
    ended = (
        settle(session, ENDS_MS, TIMING).after
        if status is Status.EXPIRED
        else accepted(cancel(session, STARTS_MS, TIMING))
    )

    assert ended.status is status
    assert warning_due(ended, ENDS_MS - 30 * SECOND_MS, TIMING) is None
