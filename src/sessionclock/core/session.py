"""The session: its statuses, roles, ready marks and the public snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sessionclock.core.clock import to_iso


class Status(StrEnum):
    SCHEDULED = "scheduled"
    WAITING = "waiting"
    READY = "ready"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.EXPIRED, Status.CANCELLED})
LIVE = frozenset({Status.SCHEDULED, Status.WAITING, Status.READY})


class Role(StrEnum):
    CLIENT = "client"
    COMPANION = "companion"


class BookingStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"


class ExpiredReason(StrEnum):
    TIME_UP = "time_up"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Timing:
    """The service-wide timing rules that turn time into transitions."""

    no_show_s: int = 600
    warnings_s: tuple[int, ...] = (300, 60)


@dataclass(frozen=True, slots=True)
class Booking:
    """What a platform books: who, when, and the booking's own state."""

    client_id: str
    companion_id: str
    starts_at_ms: int
    ends_at_ms: int
    lobby_lead_s: int
    booking_status: BookingStatus = BookingStatus.CONFIRMED


@dataclass(frozen=True, slots=True)
class Session:
    """One booked 1:1 session at one version."""

    id: str
    client_id: str
    companion_id: str
    starts_at_ms: int
    ends_at_ms: int
    lobby_lead_s: int
    booking_status: BookingStatus
    status: Status = Status.SCHEDULED
    client_ready_at_ms: int | None = None
    companion_ready_at_ms: int | None = None
    expired_reason: ExpiredReason | None = None
    absent: tuple[Role, ...] = field(default=())
    version: int = 1
    ended_at_ms: int | None = None

    @property
    def lobby_opens_at_ms(self) -> int:
        return self.starts_at_ms - self.lobby_lead_s * 1000

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def booking(self) -> Booking:
        return Booking(
            client_id=self.client_id,
            companion_id=self.companion_id,
            starts_at_ms=self.starts_at_ms,
            ends_at_ms=self.ends_at_ms,
            lobby_lead_s=self.lobby_lead_s,
            booking_status=self.booking_status,
        )

    def user_id(self, role: Role) -> str:
        return self.client_id if role is Role.CLIENT else self.companion_id

    def ready_at_ms(self, role: Role) -> int | None:
        if role is Role.CLIENT:
            return self.client_ready_at_ms
        return self.companion_ready_at_ms

    def is_ready(self, role: Role) -> bool:
        return self.ready_at_ms(role) is not None

    def role_of(self, user_id: str) -> Role | None:
        """The role a user holds here, or None for anybody who is not a participant."""
        for role in Role:
            if self.user_id(role) == user_id:
                return role
        return None

    def not_ready(self) -> tuple[Role, ...]:
        return tuple(role for role in Role if not self.is_ready(role))


def new_session(session_id: str, booking: Booking) -> Session:
    """A session as it stands right after booking, before time is applied."""
    return Session(
        id=session_id,
        client_id=booking.client_id,
        companion_id=booking.companion_id,
        starts_at_ms=booking.starts_at_ms,
        ends_at_ms=booking.ends_at_ms,
        lobby_lead_s=booking.lobby_lead_s,
        booking_status=booking.booking_status,
    )


def snapshot(session: Session, now_ms: int) -> dict[str, Any]:
    """The contract's public state of a session, stamped with the server's time."""
    participants = {
        role.value: {
            "user_id": session.user_id(role),
            "ready": session.is_ready(role),
            "ready_at": _iso_or_none(session.ready_at_ms(role)),
        }
        for role in Role
    }
    return {
        "id": session.id,
        "status": session.status.value,
        "booking_status": session.booking_status.value,
        "starts_at": to_iso(session.starts_at_ms),
        "ends_at": to_iso(session.ends_at_ms),
        "lobby_opens_at": to_iso(session.lobby_opens_at_ms),
        "lobby_lead_s": session.lobby_lead_s,
        "participants": participants,
        "expired_reason": _value_or_none(session.expired_reason),
        "absent": [role.value for role in session.absent],
        "ended_at": _iso_or_none(session.ended_at_ms),
        "version": session.version,
        "server_time": to_iso(now_ms),
        "server_time_ms": now_ms,
    }


def _iso_or_none(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else to_iso(epoch_ms)


def _value_or_none(reason: ExpiredReason | None) -> str | None:
    return None if reason is None else reason.value
