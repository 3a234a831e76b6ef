"""The attendance ledger: who was in a session's call, from when to when.

Nodes record what they see of each participant's call (joined, left, the media
connected or lost) as events; the ledger is computed from those events and the
session, so that several nodes writing their own rows give one account. A join
that no leave follows (its node died, say) is taken to last until the call
ended, or until now while it is still open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sessionclock.core.clock import to_iso
from sessionclock.core.session import Role, Session, Status


class AttendanceKind(StrEnum):
    JOINED = "joined"
    LEFT = "left"
    MEDIA_CONNECTED = "media_connected"
    MEDIA_LOST = "media_lost"


@dataclass(frozen=True, slots=True)
class AttendanceEvent:
    """One thing a node saw of one participant's call."""

    session_id: str
    role: Role
    user_id: str
    kind: AttendanceKind
    at_ms: int
    connection_id: str
    node: str
    detail: str = ""


@dataclass(slots=True)
class Presence:
    """One participant's account: joins, reconnects and time in the call."""

    user_id: str
    first_joined_at_ms: int | None = None
    last_left_at_ms: int | None = None
    joins: int = 0
    present_ms: int = 0
    media_connected_ms: int = 0
    intervals: list[tuple[int, int]] = field(default_factory=list)

    @property
    def reconnects(self) -> int:
        return max(0, self.joins - 1)


@dataclass(frozen=True, slots=True)
class Ledger:
    session_id: str
    call_started_at_ms: int | None
    call_ended_at_ms: int | None
    participants: dict[Role, Presence]
    events: tuple[AttendanceEvent, ...]


def call_end_ms(session: Session, now_ms: int) -> int:
    """When the call ends for the ledger: the session's end, or now while it runs."""
    if session.ended_at_ms is not None:
        return session.ended_at_ms
    return min(now_ms, session.ends_at_ms)


def ledger(session: Session, events: Iterable[AttendanceEvent], now_ms: int) -> Ledger:
    """The account of a session's call from its recorded events."""
    ordered = tuple(
        sorted(events, key=lambda e: (e.at_ms, e.kind is not AttendanceKind.LEFT))
    )
    end_ms = call_end_ms(session, now_ms)
    participants = {role: Presence(session.user_id(role)) for role in Role}

    # A participant is in the call while any of its connections is: two tabs, or
    # a new socket that joins before the old one's leave is seen, count once.
    joined: dict[Role, set[str]] = {role: set() for role in Role}
    since_ms: dict[Role, int] = {}
    media: dict[Role, set[str]] = {role: set() for role in Role}
    media_since_ms: dict[Role, int] = {}
    both_since_ms: int | None = None

    for event in ordered:
        at_ms = min(event.at_ms, end_ms)
        presence = participants[event.role]
        if event.kind is AttendanceKind.JOINED:
            if not joined[event.role]:
                since_ms[event.role] = at_ms
                presence.joins += 1
                if presence.first_joined_at_ms is None:
                    presence.first_joined_at_ms = at_ms
            joined[event.role].add(event.connection_id)
        elif event.kind is AttendanceKind.LEFT:
            if event.connection_id in joined[event.role]:
                joined[event.role].discard(event.connection_id)
                if not joined[event.role]:
                    presence.intervals.append((since_ms.pop(event.role), at_ms))
                    presence.last_left_at_ms = at_ms
            _media_off(event, at_ms, media, media_since_ms, presence)
        elif event.kind is AttendanceKind.MEDIA_CONNECTED:
            if not media[event.role]:
                media_since_ms[event.role] = at_ms
            media[event.role].add(event.connection_id)
        else:
            _media_off(event, at_ms, media, media_since_ms, presence)
        if both_since_ms is None and all(joined[role] for role in Role):
            both_since_ms = at_ms

    for role in Role:
        if joined[role]:
            participants[role].intervals.append((since_ms[role], end_ms))
        if media[role]:
            participants[role].media_connected_ms += end_ms - media_since_ms[role]
        participants[role].present_ms = sum(
            b - a for a, b in participants[role].intervals
        )

    ended = session.status in (Status.EXPIRED, Status.CANCELLED)
    return Ledger(
        session_id=session.id,
        call_started_at_ms=both_since_ms,
        call_ended_at_ms=end_ms if ended and both_since_ms is not None else None,
        participants=participants,
        events=ordered,
    )


def _media_off(
    event: AttendanceEvent,
    at_ms: int,
    media: dict[Role, set[str]],
    media_since_ms: dict[Role, int],
    presence: Presence,
) -> None:
    if event.connection_id not in media[event.role]:
        return
    media[event.role].discard(event.connection_id)
    if not media[event.role]:
        presence.media_connected_ms += at_ms - media_since_ms.pop(event.role)


def ledger_json(account: Ledger) -> dict[str, Any]:
    """The ledger as the attendance endpoint returns it."""
    return {
        "session_id": account.session_id,
        "call_started_at": _iso(account.call_started_at_ms),
        "call_ended_at": _iso(account.call_ended_at_ms),
        "participants": {
            role.value: {
                "user_id": presence.user_id,
                "first_joined_at": _iso(presence.first_joined_at_ms),
                "last_left_at": _iso(presence.last_left_at_ms),
                "joins": presence.joins,
                "reconnects": presence.reconnects,
                "present_s": round(presence.present_ms / 1000, 3),
                "media_connected_s": round(presence.media_connected_ms / 1000, 3),
            }
            for role, presence in account.participants.items()
        },
        "events": [_event_json(event) for event in account.events],
    }


def _event_json(event: AttendanceEvent) -> dict[str, Any]:
    return {
        "at": to_iso(event.at_ms),
        "role": event.role.value,
        "user_id": event.user_id,
        "event": event.kind.value,
        "connection_id": event.connection_id,
        "node": event.node,
        "detail": event.detail or None,
    }


def _iso(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else to_iso(epoch_ms)
