"""The session state machine: pure functions from (session, input, now) to a change.

Every function returns a `Change`. A change with no events changed nothing; a change
with events has a version one higher than the session it started from, however many
events it carries. A request that the status does not allow comes back as a change
with `rejection` set: the storage layer still writes what time alone changed (an
overdue session still expires) and the caller then raises the rejection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from sessionclock.core.clock import to_iso
from sessionclock.core.session import (
    Booking,
    BookingStatus,
    ExpiredReason,
    Role,
    Session,
    Status,
    Timing,
    new_session,
)
from sessionclock.errors import (
    CallAlreadyOpen,
    Conflict,
    LobbyNotOpen,
    SessionEnded,
)


class Event(StrEnum):
    """What happened to a session; the names are the ones webhooks and logs use."""

    CREATED = "created"
    REBOOKED = "rebooked"
    LOBBY_OPENED = "lobby_opened"
    PARTICIPANT_READY = "participant_ready"
    PARTICIPANT_UNREADY = "participant_unready"
    BOOKING_CONFIRMED = "booking_confirmed"
    READY = "ready"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of one input: the session after it and what happened on the way."""

    before: Session | None
    after: Session
    events: tuple[Event, ...] = ()
    rejection: Conflict | None = None

    @property
    def changed(self) -> bool:
        return bool(self.events)

    def rejecting(self, rejection: Conflict) -> Change:
        return replace(self, rejection=rejection)


def no_show_at_ms(session: Session, timing: Timing) -> int:
    """When a session whose participants are not both ready expires as a no-show."""
    return min(session.starts_at_ms + timing.no_show_s * 1000, session.ends_at_ms)


def create(session_id: str, booking: Booking, now_ms: int, timing: Timing) -> Change:
    """A new session, with whatever time has already done to it applied."""
    fresh = new_session(session_id, booking)
    if booking.booking_status is BookingStatus.CANCELLED:
        # A booking can arrive already cancelled (a sync of history): it never opens.
        return Change(None, _cancelled(fresh, now_ms), (Event.CREATED, Event.CANCELLED))
    settled = _settle(fresh, now_ms, timing)
    return Change(
        before=None, after=settled.after, events=(Event.CREATED, *settled.events)
    )


def settle(session: Session, now_ms: int, timing: Timing) -> Change:
    """Apply the transitions that time alone makes: lobby opening, no-show, end."""
    return _finish(session, _settle(session, now_ms, timing))


def mark_ready(
    session: Session, role: Role, ready: bool, now_ms: int, timing: Timing
) -> Change:
    """A participant says it is ready (or takes that back)."""
    settled = settle(session, now_ms, timing)
    current = settled.after

    if current.is_terminal:
        return settled.rejecting(SessionEnded(current.id, current.status))
    if current.status is Status.SCHEDULED:
        return settled.rejecting(
            LobbyNotOpen(current.id, to_iso(current.lobby_opens_at_ms))
        )
    if current.is_ready(role) == ready:
        return settled
    if current.status is Status.READY:
        return settled.rejecting(CallAlreadyOpen(current.id))

    events = list(settled.events)
    stamp = now_ms if ready else None
    if role is Role.CLIENT:
        current = replace(current, client_ready_at_ms=stamp)
    else:
        current = replace(current, companion_ready_at_ms=stamp)
    events.append(Event.PARTICIPANT_READY if ready else Event.PARTICIPANT_UNREADY)

    # The seed system's rule: the companion's ready mark confirms a pending booking.
    if (
        ready
        and role is Role.COMPANION
        and current.booking_status is BookingStatus.PENDING
    ):
        current = replace(current, booking_status=BookingStatus.CONFIRMED)
        events.append(Event.BOOKING_CONFIRMED)

    if not current.not_ready():
        current = replace(current, status=Status.READY)
        events.append(Event.READY)

    return _finish(session, Change(before=session, after=current, events=tuple(events)))


def cancel(session: Session, now_ms: int, timing: Timing) -> Change:
    """Cancel the booking; cancelling a cancelled session changes nothing."""
    settled = settle(session, now_ms, timing)
    current = settled.after
    if current.status is Status.CANCELLED:
        return settled
    if current.status is Status.EXPIRED:
        return settled.rejecting(SessionEnded(current.id, current.status))
    cancelled = _cancelled(current, now_ms)
    return _finish(
        session,
        Change(session, cancelled, (*settled.events, Event.CANCELLED)),
    )


def same_booking(session: Session, booking: Booking) -> bool:
    """Whether a booking is the one the session already holds.

    A booking sent as `pending` still matches a session that the companion has
    confirmed since: sending the original body again must stay a no-op.
    """
    held = session.booking()
    if held == booking:
        return True
    return (
        booking.booking_status is BookingStatus.PENDING
        and held.booking_status is BookingStatus.CONFIRMED
        and held == replace(booking, booking_status=BookingStatus.CONFIRMED)
    )


def rebook(session: Session, booking: Booking, now_ms: int, timing: Timing) -> Change:
    """Apply a booking's new times, participants or status to its session.

    Time is applied first: a session that has ended is history, so the same booking
    again is a no-op and another one is rejected. A participant who is replaced loses
    its ready mark, a session moved so far that its lobby is not open yet starts its
    lobby again from nothing, and a confirmation is never taken back by a booking
    that still says `pending`.
    """
    settled = settle(session, now_ms, timing)
    current = settled.after
    if current.is_terminal:
        cancelled_again = (
            current.status is Status.CANCELLED
            and booking.booking_status is BookingStatus.CANCELLED
        )
        if same_booking(current, booking) or cancelled_again:
            return settled
        return settled.rejecting(SessionEnded(current.id, current.status))
    if same_booking(current, booking):
        return settled

    events = [*settled.events]
    if booking.booking_status is BookingStatus.CANCELLED:
        events.append(Event.CANCELLED)
        return _finish(
            session, Change(session, _cancelled(current, now_ms), tuple(events))
        )

    status = booking.booking_status
    if current.booking_status is BookingStatus.CONFIRMED:
        status = BookingStatus.CONFIRMED
    updated = replace(
        current,
        client_id=booking.client_id,
        companion_id=booking.companion_id,
        starts_at_ms=booking.starts_at_ms,
        ends_at_ms=booking.ends_at_ms,
        lobby_lead_s=booking.lobby_lead_s,
        booking_status=status,
    )
    if updated.client_id != current.client_id:
        updated = replace(updated, client_ready_at_ms=None)
    if updated.companion_id != current.companion_id:
        updated = replace(updated, companion_ready_at_ms=None)
    if now_ms < updated.lobby_opens_at_ms:
        updated = replace(
            updated,
            status=Status.SCHEDULED,
            client_ready_at_ms=None,
            companion_ready_at_ms=None,
        )
    elif updated.not_ready():
        updated = replace(updated, status=Status.WAITING)
    else:
        updated = replace(updated, status=Status.READY)

    events.append(Event.REBOOKED)
    if current.status is Status.SCHEDULED and updated.status is not Status.SCHEDULED:
        events.append(Event.LOBBY_OPENED)
    resettled = _settle(updated, now_ms, timing)
    events.extend(resettled.events)
    return _finish(session, Change(session, resettled.after, tuple(events)))


def warning_due(session: Session, now_ms: int, timing: Timing) -> int | None:
    """The configured remaining time whose threshold `now_ms` has most recently crossed.

    None while the session is not in its lobby or call, before the first threshold,
    and from `ends_at` on.
    """
    if session.status not in (Status.WAITING, Status.READY):
        return None
    remaining_ms = session.ends_at_ms - now_ms
    if remaining_ms <= 0:
        return None
    crossed = [w for w in timing.warnings_s if remaining_ms <= w * 1000]
    return min(crossed) if crossed else None


def _settle(session: Session, now_ms: int, timing: Timing) -> Change:
    """Time's transitions without the version bump; `_finish` adds it once."""
    if session.is_terminal:
        return Change(session, session)

    if now_ms >= session.ends_at_ms:
        if session.status is Status.READY:
            expired = _expired(session, now_ms, ExpiredReason.TIME_UP)
        else:
            expired = _expired(session, now_ms, ExpiredReason.NO_SHOW)
        return Change(session, expired, (Event.EXPIRED,))

    if session.status is not Status.READY and now_ms >= no_show_at_ms(session, timing):
        expired = _expired(session, now_ms, ExpiredReason.NO_SHOW)
        return Change(session, expired, (Event.EXPIRED,))

    if session.status is Status.SCHEDULED and now_ms >= session.lobby_opens_at_ms:
        opened = replace(session, status=Status.WAITING)
        return Change(session, opened, (Event.LOBBY_OPENED,))

    return Change(session, session)


def _expired(session: Session, now_ms: int, reason: ExpiredReason) -> Session:
    absent = session.not_ready() if reason is ExpiredReason.NO_SHOW else ()
    return replace(
        session,
        status=Status.EXPIRED,
        expired_reason=reason,
        absent=absent,
        ended_at_ms=now_ms,
    )


def _cancelled(session: Session, now_ms: int) -> Session:
    return replace(
        session,
        status=Status.CANCELLED,
        booking_status=BookingStatus.CANCELLED,
        expired_reason=ExpiredReason.CANCELLED,
        absent=(),
        ended_at_ms=now_ms,
    )


def _finish(origin: Session, change: Change) -> Change:
    """Give a change that did something exactly one version more than its origin."""
    if not change.events:
        return Change(origin, origin, (), change.rejection)
    after = replace(change.after, version=origin.version + 1)
    return Change(origin, after, change.events, change.rejection)
