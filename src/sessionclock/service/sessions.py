"""The session use cases: what the HTTP API, the scheduler and the CLI call."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from sessionclock.bus.base import BusMessage, EventBus
from sessionclock.constants import (
    BULK_LOG_IDS,
    KNOWN_SESSIONS,
    MAX_CHANGE_ATTEMPTS,
    MAX_LOBBY_LEAD_S,
)
from sessionclock.core import machine
from sessionclock.core.clock import Clock
from sessionclock.core.machine import Change, Event
from sessionclock.core.session import (
    Booking,
    ExpiredReason,
    Role,
    Session,
    Status,
    Timing,
)
from sessionclock.errors import (
    ContentionError,
    LobbyTooFar,
    SessionClockError,
    SessionIdTaken,
    SessionNotFound,
)
from sessionclock.metrics import Metrics
from sessionclock.storage.repository import CleanupRun, SessionRepository

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SweepResult:
    opened: int
    expired: int


class SessionService:
    """Applies the state machine to stored sessions, exactly once per transition."""

    def __init__(
        self,
        repository: SessionRepository,
        bus: EventBus,
        clock: Clock,
        timing: Timing,
        metrics: Metrics,
        *,
        node: str,
        retention_s: int,
    ) -> None:
        self.repository = repository
        self.clock = clock
        self.timing = timing
        self._bus = bus
        self._metrics = metrics
        self._node = node
        self._retention_s = retention_s
        # The last stored version this node read, wrote or heard of, per session,
        # most recently used last: a ready mark decides from it and writes with one
        # conditional statement, without reading first (see `_apply_known`).
        self._known: OrderedDict[str, Session] = OrderedDict()
        bus.subscribe(self._hear)

    async def create(
        self, session_id: str | None, booking: Booking
    ) -> tuple[Session, bool]:
        """Create a session; the same id with the same booking again is a no-op.

        Returns the session and whether this call created it.
        """
        if session_id is None:
            session_id = uuid.uuid4().hex
        now_ms = self.clock.now_ms()
        change = machine.create(session_id, booking, now_ms, self.timing)
        if await self.repository.insert(change, now_ms):
            await self._announce(change, now_ms)
            return change.after, True

        existing = await self.get(session_id)
        if not machine.same_booking(existing, booking):
            raise SessionIdTaken(session_id)
        return existing, False

    async def upsert(self, session_id: str, booking: Booking) -> tuple[Session, bool]:
        """Create a session or bring an existing one in line with its booking."""
        now_ms = self.clock.now_ms()
        change = machine.create(session_id, booking, now_ms, self.timing)
        if await self.repository.insert(change, now_ms):
            await self._announce(change, now_ms)
            return change.after, True
        updated = await self._apply(
            session_id, lambda s, now: machine.rebook(s, booking, now, self.timing)
        )
        return updated, False

    async def open_lobby_now(self, session_id: str) -> Session:
        """Open a session's lobby at once by stretching its lead (debug controls)."""
        session = await self.get(session_id)
        now_ms = self.clock.now_ms()
        if session.is_terminal or now_ms >= session.lobby_opens_at_ms:
            return session
        lead_s = -(-(session.starts_at_ms - now_ms) // 1000)
        if lead_s > MAX_LOBBY_LEAD_S:
            raise LobbyTooFar(session_id, MAX_LOBBY_LEAD_S)
        booking = Booking(
            client_id=session.client_id,
            companion_id=session.companion_id,
            starts_at_ms=session.starts_at_ms,
            ends_at_ms=session.ends_at_ms,
            lobby_lead_s=lead_s,
            booking_status=session.booking_status,
        )
        updated, _created = await self.upsert(session_id, booking)
        return updated

    async def get(self, session_id: str) -> Session:
        """The session as it stands now; time's transitions are written on the way."""
        return await self._apply(
            session_id, lambda s, now: machine.settle(s, now, self.timing)
        )

    async def get_for(self, session_id: str, user_id: str) -> tuple[Session, Role]:
        """The session and the caller's role in it; strangers learn nothing."""
        session = await self.get(session_id)
        role = session.role_of(user_id)
        if role is None:
            raise SessionNotFound(session_id)
        return session, role

    async def mark_ready(self, session_id: str, user_id: str, ready: bool) -> Session:
        def decide(session: Session, now_ms: int) -> Change:
            role = session.role_of(user_id)
            if role is None:
                raise SessionNotFound(session_id)
            return machine.mark_ready(session, role, ready, now_ms, self.timing)

        # A participant's marks are the hot path: try the version known here first.
        known = await self._apply_known(session_id, decide, user_id=user_id)
        if known is not None:
            return known
        return await self._apply(session_id, decide, user_id=user_id)

    async def cancel(self, session_id: str) -> Session:
        return await self._apply(
            session_id, lambda s, now: machine.cancel(s, now, self.timing)
        )

    async def sessions_of(self, user_id: str, within_s: int | None) -> list[Session]:
        """A participant's sessions that have not ended, soonest first."""
        now_ms = self.clock.now_ms()
        before_ms = None if within_s is None else now_ms + within_s * 1000
        found = []
        for stored in await self.repository.for_user(user_id, before_ms):
            change = machine.settle(stored, now_ms, self.timing)
            if change.changed:
                stored = await self.get(stored.id)
            if not stored.is_terminal:
                found.append(stored)
        return found

    async def warn(self, session_id: str, remaining_s: int) -> bool:
        """Raise a due warning once across all nodes; False when not due or done."""
        session = await self.repository.get(session_id)
        if session is None:
            return False
        now_ms = self.clock.now_ms()
        if machine.warning_due(session, now_ms, self.timing) != remaining_s:
            return False
        if not await self.repository.record_warning(session, remaining_s, now_ms):
            return False
        log.info(
            "session.warning",
            session_id=session.id,
            status=session.status.value,
            version=session.version,
            remaining_s=remaining_s,
        )
        await self._bus.publish(
            BusMessage("warning", session.id, session, {"remaining_s": remaining_s})
        )
        return True

    async def sweep(self, *, open_lobbies: bool = True) -> SweepResult:
        """Write in bulk what time did and no timer caught (the safety net).

        Expired sessions are pushed before lobbies are opened: their participants
        wait for the end, nobody waits for a lobby to the millisecond. A timer that
        knows no lobby is due passes `open_lobbies=False` and saves the statement.
        """
        now_ms = self.clock.now_ms()
        expired = await self.repository.expire_overdue(now_ms, self.timing.no_show_s)
        await self._announce_bulk(expired, (Event.EXPIRED,), now_ms)

        opened: list[Session] = []
        if open_lobbies:
            opened = await self.repository.open_due_lobbies(
                now_ms, self.timing.no_show_s
            )
            await self._announce_bulk(opened, (Event.LOBBY_OPENED,), now_ms)

        if expired or opened:
            log.info(
                "scheduler.swept",
                expired=len(expired),
                opened=len(opened),
                expired_ids=_named(expired),
                opened_ids=_named(opened),
            )
        return SweepResult(opened=len(opened), expired=len(expired))

    async def cleanup(self, trigger: str) -> CleanupRun:
        """Expire overdue sessions and purge old runtime records; keep the history."""
        started_ms = self.clock.now_ms()
        expired = 0
        expired_ids: list[str] = []
        # In chunks: one statement never holds the locks of every overdue row.
        chunks = self.repository.expire_overdue_in_chunks(
            started_ms, self.timing.no_show_s
        )
        # Closed here even on an error: the chunk in flight is then waited for.
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                await self._announce_bulk(chunk, (Event.EXPIRED,), started_ms)
                expired += len(chunk)
                expired_ids += _named(chunk)[: BULK_LOG_IDS - len(expired_ids)]
        purged = await self.repository.purge_ended(
            started_ms - self._retention_s * 1000
        )

        run = CleanupRun(
            ran_at_ms=started_ms,
            trigger=trigger,
            node=self._node,
            expired=expired,
            purged=purged,
            duration_ms=self.clock.now_ms() - started_ms,
        )
        await self.repository.record_cleanup(run)
        self._metrics.cleanup_runs.labels(trigger).inc()
        self._metrics.cleanup_rows.labels("expired").inc(run.expired)
        self._metrics.cleanup_rows.labels("purged").inc(run.purged)
        log.info(
            "cleanup.ran",
            trigger=trigger,
            expired=run.expired,
            purged=run.purged,
            duration_ms=run.duration_ms,
            expired_ids=expired_ids,
        )
        return run

    async def _apply(
        self,
        session_id: str,
        decide: Callable[[Session, int], Change],
        *,
        user_id: str | None = None,
    ) -> Session:
        """Read, decide in the core, write if still current; start over if not."""
        for _attempt in range(MAX_CHANGE_ATTEMPTS):
            current = await self.repository.get(session_id)
            if current is None:
                self._known.pop(session_id, None)
                raise SessionNotFound(session_id)
            self._remember(current)
            now_ms = self.clock.now_ms()
            change = decide(current, now_ms)

            if change.changed:
                if not await self.repository.replace(change, now_ms):
                    # Another request or node wrote this version first.
                    log.debug("session.write_lost", session_id=session_id)
                    continue
                self._remember(change.after)
                await self._announce(change, now_ms, user_id=user_id)

            if change.rejection is not None:
                raise change.rejection
            return change.after
        raise ContentionError(session_id, MAX_CHANGE_ATTEMPTS)

    async def _apply_known(
        self,
        session_id: str,
        decide: Callable[[Session, int], Change],
        *,
        user_id: str | None = None,
    ) -> Session | None:
        """Decide from the version known here and write it; None if that fails.

        The write is conditional on that version, and every write of a session
        raises its version: if the write succeeds, the known version was the stored
        one and the core decided from the truth, in one round trip instead of two.
        Anything else (nothing known, a stale version, a decision that writes
        nothing or refuses) is left to `_apply`, which reads first, so that no
        answer and no refusal is ever given from a stale copy.
        """
        known = self._known.get(session_id)
        if known is None:
            return None
        now_ms = self.clock.now_ms()
        try:
            change = decide(known, now_ms)
        except SessionClockError:
            return None
        if not change.changed or change.rejection is not None:
            return None
        if not await self.repository.replace(change, now_ms):
            log.debug("session.write_lost", session_id=session_id)
            return None
        self._remember(change.after)
        await self._announce(change, now_ms, user_id=user_id)
        return change.after

    def _remember(self, session: Session) -> None:
        """Keep a stored version as the one known here, unless a newer one is."""
        held = self._known.get(session.id)
        if held is not None and held.version > session.version:
            return
        if session.is_terminal:
            # Nothing is ever written to an ended session again.
            self._known.pop(session.id, None)
            return
        self._known[session.id] = session
        self._known.move_to_end(session.id)
        if len(self._known) > KNOWN_SESSIONS:
            self._known.popitem(last=False)

    async def _hear(self, message: BusMessage) -> None:
        """Keep known versions current with what other nodes (and this one) wrote."""
        session = message.session
        if session is None:
            return
        held = self._known.get(session.id)
        if held is not None and held.version < session.version:
            if session.is_terminal:
                del self._known[session.id]
            else:
                self._known[session.id] = session

    async def _announce(
        self, change: Change, now_ms: int, *, user_id: str | None = None
    ) -> None:
        session = change.after
        before = change.before
        # Publish first: the other participant's push waits for it, the log line
        # (a tenth of a millisecond) does not need to go before it.
        await self._publish(session)
        log.info(
            "session.changed",
            session_id=session.id,
            user_id=user_id,
            events=[event.value for event in change.events],
            status=session.status.value,
            previous_status=None if before is None else before.status.value,
            version=session.version,
            node=self._node,
        )
        if before is None:
            self._metrics.transitions.labels(session.status.value).inc()
        elif before.status is not session.status:
            self._observe_transition(session, now_ms)

    async def _announce_bulk(
        self, changed: Sequence[Session], events: tuple[Event, ...], now_ms: int
    ) -> None:
        """Push the sessions of one bulk write; the caller logs one line for all."""
        # Publish first: the sockets wait for these, an operator does not.
        for session in changed:
            await self._publish(session)
        # Each label's child once per write, not once per session.
        for status, count in Counter(session.status for session in changed).items():
            self._metrics.transitions.labels(status.value).inc(count)
        for session in changed:
            self._observe_expiry(session, now_ms)

        # One line per session only when asked for: at 10,000 sessions a second
        # the lines would cost more than the pushes.
        if changed and log.is_enabled_for(logging.DEBUG):
            names = [event.value for event in events]
            for session in changed:
                log.debug(
                    "session.changed",
                    session_id=session.id,
                    events=names,
                    status=session.status.value,
                    version=session.version,
                    node=self._node,
                    bulk=True,
                )

    def _observe_transition(self, session: Session, now_ms: int) -> None:
        self._metrics.transitions.labels(session.status.value).inc()
        self._observe_expiry(session, now_ms)

    def _observe_expiry(self, session: Session, now_ms: int) -> None:
        if session.status is Status.EXPIRED:
            due_ms = session.ends_at_ms
            if session.expired_reason is ExpiredReason.NO_SHOW:
                due_ms = machine.no_show_at_ms(session, self.timing)
            self._metrics.expiry_lateness.observe(max(0, now_ms - due_ms) / 1000)

    async def _publish(self, session: Session) -> None:
        await self._bus.publish(BusMessage("snapshot", session.id, session))


def _named(changed: Sequence[Session]) -> list[str]:
    """The ids a bulk write's summary line names, so that a search finds them."""
    return [session.id for session in changed[:BULK_LOG_IDS]]
