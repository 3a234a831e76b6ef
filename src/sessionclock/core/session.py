"""The session: its statuses, roles, ready marks and the public snapshot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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


# Both roles, in order: iterating an enum class is slow on the hot paths.
ROLES: tuple[Role, ...] = tuple(Role)


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
        for role in ROLES:
            if self.user_id(role) == user_id:
                return role
        return None

    def not_ready(self) -> tuple[Role, ...]:
        return tuple(role for role in ROLES if not self.is_ready(role))


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


def to_record(session: Session) -> dict[str, Any]:
    """The session as flat primitives: a database row, a message between nodes."""
    return {
        "id": session.id,
        "client_id": session.client_id,
        "companion_id": session.companion_id,
        "starts_at_ms": session.starts_at_ms,
        "ends_at_ms": session.ends_at_ms,
        "lobby_lead_s": session.lobby_lead_s,
        "booking_status": session.booking_status.value,
        "status": session.status.value,
        "client_ready_at_ms": session.client_ready_at_ms,
        "companion_ready_at_ms": session.companion_ready_at_ms,
        "expired_reason": _value_or_none(session.expired_reason),
        "absent": ",".join(role.value for role in session.absent),
        "version": session.version,
        "ended_at_ms": session.ended_at_ms,
    }


def from_record(record: Mapping[Any, Any]) -> Session:
    """The inverse of `to_record`; extra keys (a row's timestamps) are ignored.

    Bulk writes turn thousands of rows into sessions at once: values are looked up
    in dicts, which is several times faster than calling the enum classes.
    """
    reason = record["expired_reason"]
    absent = record["absent"]
    return Session(
        id=record["id"],
        client_id=record["client_id"],
        companion_id=record["companion_id"],
        starts_at_ms=record["starts_at_ms"],
        ends_at_ms=record["ends_at_ms"],
        lobby_lead_s=record["lobby_lead_s"],
        booking_status=_BOOKING_STATUSES[record["booking_status"]],
        status=_STATUSES[record["status"]],
        client_ready_at_ms=record["client_ready_at_ms"],
        companion_ready_at_ms=record["companion_ready_at_ms"],
        expired_reason=None if reason is None else _REASONS[reason],
        absent=_ABSENT.get(absent) or _roles(absent),
        version=record["version"],
        ended_at_ms=record["ended_at_ms"],
    )


# The keys of `to_record` in its order, which is also the order of `Session`'s
# fields: the order `from_fields` reads values in.
RECORD_FIELDS = (
    "id",
    "client_id",
    "companion_id",
    "starts_at_ms",
    "ends_at_ms",
    "lobby_lead_s",
    "booking_status",
    "status",
    "client_ready_at_ms",
    "companion_ready_at_ms",
    "expired_reason",
    "absent",
    "version",
    "ended_at_ms",
)


def from_fields(fields: Sequence[Any]) -> Session:
    """`from_record` for the values alone, in the order of `RECORD_FIELDS`.

    A bulk write's rows arrive in that order; unpacking them costs less than half
    of building a dict per row and looking each field up in it.
    """
    (
        session_id,
        client_id,
        companion_id,
        starts_at_ms,
        ends_at_ms,
        lobby_lead_s,
        booking_status,
        status,
        client_ready_at_ms,
        companion_ready_at_ms,
        reason,
        absent,
        version,
        ended_at_ms,
    ) = fields
    # By position, in the order of the fields: keywords cost a third more.
    return Session(
        session_id,
        client_id,
        companion_id,
        starts_at_ms,
        ends_at_ms,
        lobby_lead_s,
        _BOOKING_STATUSES[booking_status],
        _STATUSES[status],
        client_ready_at_ms,
        companion_ready_at_ms,
        None if reason is None else _REASONS[reason],
        _ABSENT.get(absent) or _roles(absent),
        version,
        ended_at_ms,
    )


_BOOKING_STATUSES = {status.value: status for status in BookingStatus}
_STATUSES = {status.value: status for status in Status}
_REASONS = {reason.value: reason for reason in ExpiredReason}
_ABSENT: dict[str, tuple[Role, ...]] = {
    "client": (Role.CLIENT,),
    "companion": (Role.COMPANION,),
    "client,companion": (Role.CLIENT, Role.COMPANION),
}


def _roles(names: str) -> tuple[Role, ...]:
    return tuple(Role(name) for name in names.split(",") if name)


def snapshot(
    session: Session, now_ms: int, online: Mapping[Role, bool] | None = None
) -> dict[str, Any]:
    """The contract's public state of a session, stamped with the server's time.

    `online`, when known, says which participants hold a live connection now.
    """
    participants: dict[str, dict[str, Any]] = {
        role.value: {
            "user_id": session.user_id(role),
            "ready": session.is_ready(role),
            "ready_at": _iso_or_none(session.ready_at_ms(role)),
        }
        for role in ROLES
    }
    if online is not None:
        for role in ROLES:
            participants[role.value]["online"] = online.get(role, False)
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
