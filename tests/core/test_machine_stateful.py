"""The session state machine under random sequences of inputs and passing time."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from sessionclock.core.machine import (
    Change,
    cancel,
    create,
    mark_ready,
    no_show_at_ms,
    rebook,
    settle,
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
from sessionclock.errors import CallAlreadyOpen, LobbyNotOpen, SessionEnded

# 2026-12-03T18:00:00.000Z: every run starts here.
T0_MS = 1_796_320_800_000
SECOND_MS = 1_000
MINUTE_MS = 60_000

TIMING = Timing(no_show_s=600, warnings_s=(300, 60))

BOOKING = Booking(
    client_id="u-client",
    companion_id="u-companion",
    starts_at_ms=T0_MS + 10 * MINUTE_MS,
    ends_at_ms=T0_MS + 40 * MINUTE_MS,
    lobby_lead_s=300,
)

# Disjoint pools, so a client is never its own companion.
CLIENTS = ("u-client", "u-client-2")
COMPANIONS = ("u-companion", "u-companion-2")


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in `n` draws.

    The platform's rules end or reset a session, so they fire rarely: most runs
    then live long enough to reach the call and its end.
    """
    return st.integers(min_value=0, max_value=n - 1).map(lambda draw: draw == 0)


def _other(pool: tuple[str, str], user_id: str) -> str:
    """The user of the pool who is not `user_id`."""
    return pool[1] if user_id == pool[0] else pool[0]


class SessionMachine(RuleBasedStateMachine):
    """One session, the inputs of both participants and the platform, and a clock."""

    def __init__(self) -> None:
        super().__init__()
        # Placeholders until `book` runs, which always runs first.
        self.now_ms = T0_MS
        self.session = create("s-1", BOOKING, self.now_ms, TIMING).after
        self.ended: Session | None = None

    @initialize(
        booking_status=st.sampled_from(
            [BookingStatus.CONFIRMED, BookingStatus.PENDING]
        ),
        created_after_ms=st.integers(min_value=4 * MINUTE_MS, max_value=12 * MINUTE_MS),
    )
    def book(self, booking_status: BookingStatus, created_after_ms: int) -> None:
        """Create the session a little before its lobby opens, or inside it."""
        self.now_ms = T0_MS + created_after_ms
        first = replace(BOOKING, booking_status=booking_status)
        change = create("s-1", first, self.now_ms, TIMING)
        assert change.before is None
        assert change.after.version == 1
        self.session = change.after
        self._note_ended()

    # Inputs

    @rule(role=st.sampled_from(Role))
    def ready(self, role: Role) -> None:
        self._apply(mark_ready(self.session, role, True, self.now_ms, TIMING))

    @rule(role=st.sampled_from(Role))
    def unready(self, role: Role) -> None:
        self._apply(mark_ready(self.session, role, False, self.now_ms, TIMING))

    @rule(happens=one_in(16), by_sync=st.booleans())
    def cancel_booking(self, happens: bool, by_sync: bool) -> None:
        """The platform cancels, directly or by syncing a cancelled booking."""
        if not happens:
            return
        if by_sync:
            called_off = replace(
                self.session.booking(), booking_status=BookingStatus.CANCELLED
            )
            self._apply(rebook(self.session, called_off, self.now_ms, TIMING))
        else:
            self._apply(cancel(self.session, self.now_ms, TIMING))

    @rule(
        happens=one_in(4),
        start_shift_s=st.integers(min_value=-180, max_value=180),
        end_shift_s=st.integers(min_value=-180, max_value=180),
        replaced=st.none() | st.sampled_from(Role),
        booking_status=st.sampled_from(
            [None, BookingStatus.PENDING, BookingStatus.CONFIRMED]
        ),
    )
    def rebook_booking(
        self,
        happens: bool,
        start_shift_s: int,
        end_shift_s: int,
        replaced: Role | None,
        booking_status: BookingStatus | None,
    ) -> None:
        """The platform moves the session a little, maybe with another participant."""
        if not happens:
            return
        current = self.session
        starts_at_ms = current.starts_at_ms + start_shift_s * SECOND_MS
        ends_at_ms = max(
            current.ends_at_ms + end_shift_s * SECOND_MS,
            starts_at_ms + MINUTE_MS,
        )
        client_id, companion_id = current.client_id, current.companion_id
        if replaced is Role.CLIENT:
            client_id = _other(CLIENTS, client_id)
        elif replaced is Role.COMPANION:
            companion_id = _other(COMPANIONS, companion_id)
        moved = Booking(
            client_id=client_id,
            companion_id=companion_id,
            starts_at_ms=starts_at_ms,
            ends_at_ms=ends_at_ms,
            lobby_lead_s=current.lobby_lead_s,
            booking_status=booking_status or current.booking_status,
        )
        self._apply(rebook(current, moved, self.now_ms, TIMING))

        # A ready mark belongs to a user: whoever replaces that user has none yet.
        for role in Role:
            if self.session.user_id(role) != current.user_id(role):
                assert not self.session.is_ready(role)

    @rule()
    def cleanup(self) -> None:
        """The sweep applies what time alone changed."""
        self._apply(settle(self.session, self.now_ms, TIMING))

    # Time

    @rule(delta_ms=st.integers(min_value=0, max_value=5 * MINUTE_MS))
    def pass_time(self, delta_ms: int) -> None:
        self.now_ms += delta_ms

    @rule(
        moment=st.sampled_from(["lobby", "start", "no_show", "ends"]),
        offset_ms=st.integers(min_value=-2, max_value=2),
    )
    def jump_near(self, moment: str, offset_ms: int) -> None:
        """Move the clock to just around a moment that matters, never backwards."""
        targets = {
            "lobby": self.session.lobby_opens_at_ms,
            "start": self.session.starts_at_ms,
            "no_show": no_show_at_ms(self.session, TIMING),
            "ends": self.session.ends_at_ms,
        }
        self.now_ms = max(self.now_ms, targets[moment] + offset_ms)

    # Checks after each change

    def _apply(self, change: Change) -> None:
        before = self.session
        after = change.after

        assert change.before == before
        assert after.id == before.id
        assert after.version >= before.version
        if change.events:
            assert after.version == before.version + 1, change.events
        else:
            assert after == before
        if before.is_terminal:
            assert after == before

        # Whatever happened, the session is left as time has it now.
        assert settle(after, self.now_ms, TIMING).events == ()
        self._check_status_matches_clock(before, after)

        rejection = change.rejection
        if isinstance(rejection, SessionEnded):
            assert after.is_terminal
        elif isinstance(rejection, LobbyNotOpen):
            assert after.status is Status.SCHEDULED
        elif isinstance(rejection, CallAlreadyOpen):
            assert after.status is Status.READY
        else:
            assert rejection is None

        self.session = after
        self._note_ended()

    def _check_status_matches_clock(self, before: Session, after: Session) -> None:
        """The status a change leaves is the one the clock calls for."""
        now_ms = self.now_ms
        if after.status is Status.SCHEDULED:
            assert now_ms < after.lobby_opens_at_ms
        if after.status in (Status.WAITING, Status.READY):
            assert after.lobby_opens_at_ms <= now_ms < after.ends_at_ms
        if after.status is Status.WAITING:
            assert now_ms < no_show_at_ms(after, TIMING)
        if after.is_terminal and not before.is_terminal:
            assert after.ended_at_ms == now_ms
            if after.expired_reason is ExpiredReason.TIME_UP:
                assert now_ms >= after.ends_at_ms
            if after.expired_reason is ExpiredReason.NO_SHOW:
                assert now_ms >= no_show_at_ms(after, TIMING)

    def _note_ended(self) -> None:
        if self.ended is None and self.session.is_terminal:
            self.ended = self.session

    # Invariants

    @invariant()
    def terminal_never_changes(self) -> None:
        if self.ended is not None:
            assert self.session == self.ended
            assert self.session.status is self.ended.status
            assert self.session.version == self.ended.version

    @invariant()
    def ready_only_with_both_marks(self) -> None:
        if self.session.status is Status.READY:
            assert self.session.client_ready_at_ms is not None
            assert self.session.companion_ready_at_ms is not None

    @invariant()
    def scheduled_has_no_marks(self) -> None:
        if self.session.status is Status.SCHEDULED:
            assert self.session.not_ready() == (Role.CLIENT, Role.COMPANION)

    @invariant()
    def expired_reason_iff_terminal(self) -> None:
        session = self.session
        assert (session.expired_reason is not None) == session.is_terminal
        assert (session.ended_at_ms is not None) == session.is_terminal
        assert (session.status is Status.CANCELLED) == (
            session.expired_reason is ExpiredReason.CANCELLED
        )
        if session.status is Status.CANCELLED:
            assert session.booking_status is BookingStatus.CANCELLED

    @invariant()
    def absent_only_on_no_show(self) -> None:
        session = self.session
        if session.expired_reason is ExpiredReason.NO_SHOW:
            assert session.absent == session.not_ready()
            assert session.absent != ()
        else:
            assert session.absent == ()


def test_session_machine_random_steps_keep_invariants() -> None:
    """Any sequence of marks, cancels, rebooks, cleanups and time keeps the rules."""
    run_state_machine_as_test(
        SessionMachine,
        settings=settings(max_examples=200, stateful_step_count=40, deadline=None),
    )
