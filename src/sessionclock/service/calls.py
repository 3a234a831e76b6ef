"""The call use cases: who may join, what is recorded, what is relayed.

A participant's socket joins the call only while the session is `ready` and before
`ends_at`; only joined sockets send and receive signalling, and only to the other
participant. Every join, leave and media report is written to the attendance
ledger by the node that saw it.
"""

from __future__ import annotations

from typing import Any

import structlog

from sessionclock.bus.base import BusMessage, EventBus
from sessionclock.core.attendance import (
    AttendanceEvent,
    AttendanceKind,
    Ledger,
    ledger,
)
from sessionclock.core.session import Role, Session, Status
from sessionclock.errors import CallNotOpen, NotInCall, SessionEnded
from sessionclock.metrics import Metrics
from sessionclock.realtime.hub import Connection, frame
from sessionclock.service.sessions import SessionService
from sessionclock.storage.attendance import AttendanceRepository
from sessionclock.video.base import CallAccess, VideoProvider

log = structlog.get_logger(__name__)


def require_call_open(session: Session, now_ms: int) -> None:
    """Raise unless the call is open: both ready, and the booked time not up."""
    if session.is_terminal or now_ms >= session.ends_at_ms:
        raise SessionEnded(session.id, session.status.value)
    if session.status is not Status.READY:
        raise CallNotOpen(session.id, session.status.value)


def other(role: Role) -> Role:
    return Role.COMPANION if role is Role.CLIENT else Role.CLIENT


class CallService:
    """Joins, leaves and signalling of the built-in call, and the ledger."""

    def __init__(
        self,
        sessions: SessionService,
        attendance: AttendanceRepository,
        bus: EventBus,
        provider: VideoProvider,
        metrics: Metrics,
        *,
        node: str,
    ) -> None:
        self._sessions = sessions
        self._attendance = attendance
        self._bus = bus
        self._provider = provider
        self._metrics = metrics
        self._node = node

    async def access(
        self, session_id: str, user_id: str
    ) -> tuple[Session, Role, CallAccess]:
        """What this participant's browser needs to join; 409 unless it is open."""
        session, role = await self._sessions.get_for(session_id, user_id)
        now_ms = self._sessions.clock.now_ms()
        require_call_open(session, now_ms)
        return session, role, self._provider.access(session, role, now_ms)

    async def join(self, connection: Connection, peer_id: str) -> None:
        """This socket is in the call from now on, as the peer `peer_id`."""
        session = await self._sessions.get(connection.session_id)
        require_call_open(session, self._sessions.clock.now_ms())
        # The same socket joining again as the same peer is news for the other
        # side (it restarts ICE), not a new interval for the ledger.
        if connection.call_peer_id != peer_id:
            if connection.call_peer_id is not None:
                await self._record(connection, AttendanceKind.LEFT, "new peer")
            connection.call_peer_id = peer_id
            connection.call_until_ms = session.ends_at_ms
            connection.media_state = None
            await self._record(connection, AttendanceKind.JOINED, "")
        await self._tell_other(
            connection,
            "call",
            frame("call", role=connection.role.value, action="join", peer_id=peer_id),
        )

    async def leave(self, connection: Connection, detail: str) -> None:
        """This socket is out of the call (hung up, or gone); nothing if it was out."""
        if connection.call_peer_id is None:
            return
        peer_id = connection.call_peer_id
        connection.call_peer_id = None
        await self._record(connection, AttendanceKind.LEFT, detail)
        await self._tell_other(
            connection,
            "call",
            frame(
                "call",
                role=connection.role.value,
                action="leave",
                peer_id=peer_id,
                reason=detail,
            ),
        )

    async def media(self, connection: Connection, state: str) -> None:
        """What the browser reports of its media: connected to the other, or lost."""
        if not connection.in_call:
            raise NotInCall(connection.session_id)
        if state == connection.media_state:
            return
        connection.media_state = state
        kind = (
            AttendanceKind.MEDIA_CONNECTED
            if state == "connected"
            else AttendanceKind.MEDIA_LOST
        )
        await self._record(connection, kind, "")

    async def signal(self, connection: Connection, data: dict[str, Any]) -> None:
        """Relay one description or ICE candidate to the other participant."""
        if not connection.in_call:
            self._metrics.call_events.labels("signal_refused").inc()
            raise NotInCall(connection.session_id)
        if self._sessions.clock.now_ms() >= connection.call_until_ms:
            connection.call_peer_id = None
            self._metrics.call_events.labels("signal_refused").inc()
            raise SessionEnded(connection.session_id, "expired")
        encoded = frame(
            "signal",
            **{"from": connection.role.value},
            peer_id=connection.call_peer_id,
            data=data,
        )
        self._metrics.call_events.labels("signal").inc()
        await self._tell_other(connection, "signal", encoded)
        log.debug(
            "call.signal",
            session_id=connection.session_id,
            role=connection.role.value,
            keys=sorted(data)[:4],
        )

    async def ledger(self, session_id: str) -> Ledger:
        """The attendance account of one session's call."""
        session = await self._sessions.get(session_id)
        events = await self._attendance.events(session_id)
        return ledger(session, events, self._sessions.clock.now_ms())

    async def _record(
        self, connection: Connection, kind: AttendanceKind, detail: str
    ) -> None:
        event = AttendanceEvent(
            session_id=connection.session_id,
            role=connection.role,
            user_id=connection.user_id,
            kind=kind,
            at_ms=self._sessions.clock.now_ms(),
            connection_id=connection.id,
            node=self._node,
            detail=detail,
        )
        await self._attendance.record(event)
        self._metrics.call_events.labels(kind.value).inc()
        log.info(
            f"call.{kind.value}",
            session_id=connection.session_id,
            user_id=connection.user_id,
            role=connection.role.value,
            connection_id=connection.id,
            detail=detail or None,
            node=self._node,
        )

    async def _tell_other(
        self, connection: Connection, kind: str, encoded: str
    ) -> None:
        message = BusMessage(
            kind,
            connection.session_id,
            data={"to": other(connection.role).value, "frame": encoded},
        )
        await self._bus.publish(message)
