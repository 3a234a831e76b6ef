"""Strapi entries to bookings and back, through the configured field map.

Pure: no HTTP, no database. Strapi's answers are untrusted, so every value is
checked, and an entry that cannot be a booking comes back as a `Skipped` with the
reason, never as an exception. Both response shapes are read: Strapi 5's flat
entries (`documentId`, fields at the top) and the v4 shape (`id`, fields under
`attributes`, relations under `data`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sessionclock.constants import (
    MAX_DURATION_S,
    SESSION_ID_PATTERN,
    USER_ID_PATTERN,
)
from sessionclock.core.clock import to_epoch_ms
from sessionclock.core.notices import Outcome
from sessionclock.core.session import Booking, BookingStatus

IdKey = Literal["documentId", "id"]
UserKey = Literal["id", "documentId", "username", "email"]
Participants = Literal["relation", "field"]

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_USER_ID = re.compile(USER_ID_PATTERN)
_MAX_SHOWN_CHARS = 60


@dataclass(frozen=True, slots=True)
class FieldMap:
    """Which Strapi field holds which part of a booking, and what its values mean."""

    id_key: IdKey = "documentId"
    starts_at: str = "startsAt"
    ends_at: str | None = "endsAt"
    duration: str | None = None
    duration_unit_s: int = 60
    booking_status: str | None = "bookingStatus"
    status_values: Mapping[str, BookingStatus] = field(
        default_factory=lambda: {status.value: status for status in BookingStatus}
    )
    client: str = "client"
    companion: str = "companion"
    participants: Participants = "relation"
    user_key: UserKey = "id"
    outcome: str | None = None
    outcome_values: Mapping[Outcome, str] = field(
        default_factory=lambda: {outcome: outcome.value for outcome in Outcome}
    )
    lobby_lead_s: int = 300

    def populate(self) -> dict[str, str]:
        """The query parameters that make Strapi include the participant relations."""
        if self.participants != "relation":
            return {}
        return {
            f"populate[{self.client}]": "true",
            f"populate[{self.companion}]": "true",
        }

    def status_value(self, status: BookingStatus) -> str | None:
        """The Strapi value written for a booking status (the first one mapped)."""
        for value, mapped in self.status_values.items():
            if mapped is status:
                return value
        return None

    def write_back(self, kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The Strapi fields a write-back sets; empty when nothing is mapped."""
        if kind == "booking_confirmed" and self.booking_status is not None:
            value = self.status_value(BookingStatus(data["booking_status"]))
            return {} if value is None else {self.booking_status: value}
        if kind == "outcome" and self.outcome is not None:
            outcome = Outcome(data["outcome"])
            return {self.outcome: self.outcome_values.get(outcome, outcome.value)}
        return {}


@dataclass(frozen=True, slots=True)
class Parsed:
    """An entry that is a booking."""

    session_id: str
    booking: Booking
    updated_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry that is not a usable booking, and why."""

    entry_id: str | None
    reason: str


def parse_value_map(text: str, what: str) -> dict[str, str]:
    """`a=b,c=d` into a dict; raises ValueError naming what was expected."""
    pairs: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(
                f"{what}: expected pairs such as 'a=b,c=d', got {part.strip()!r}"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def status_values(text: str) -> dict[str, BookingStatus]:
    """The status value map: each Strapi value to a booking status."""
    mapped: dict[str, BookingStatus] = {}
    for value, status in parse_value_map(text, "booking status values").items():
        try:
            mapped[value] = BookingStatus(status)
        except ValueError:
            raise ValueError(
                "booking status values: expected pending, confirmed or cancelled "
                f"after '=', got {status!r}"
            ) from None
    return mapped


def outcome_values(text: str) -> dict[Outcome, str]:
    """The outcome value map: each outcome to the Strapi value written for it."""
    mapped = {outcome: outcome.value for outcome in Outcome}
    for outcome, value in parse_value_map(text, "outcome values").items():
        try:
            mapped[Outcome(outcome)] = value
        except ValueError:
            names = ", ".join(o.value for o in Outcome)
            raise ValueError(
                f"outcome values: expected one of {names} before '=', got {outcome!r}"
            ) from None
    return mapped


def flatten(entry: Any) -> dict[str, Any] | None:
    """An entry's fields at the top level, whichever shape Strapi answered with."""
    if not isinstance(entry, dict):
        return None
    attributes = entry.get("attributes")
    if isinstance(attributes, dict):
        return {**attributes, "id": entry.get("id")}
    return entry


def entry_key(entry: Any, fields: FieldMap) -> str | None:
    """The entry's id in the configured style, if it has a usable one."""
    flat = flatten(entry)
    if flat is None:
        return None
    value = flat.get(fields.id_key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    key = str(value)
    return key if _SESSION_ID.match(key) else None


def parse_booking(entry: Any, fields: FieldMap) -> Parsed | Skipped:
    """One Strapi entry as a booking, or the reason it is not one."""
    flat = flatten(entry)
    if flat is None:
        return Skipped(None, f"expected an object, got {_shown(entry)}")
    key = entry_key(flat, fields)
    if key is None:
        return Skipped(None, _expected(fields.id_key, "a session id", flat))

    starts_at_ms = _instant(flat.get(fields.starts_at))
    if starts_at_ms is None:
        return Skipped(key, _expected(fields.starts_at, "an ISO 8601 time", flat))

    ends_at_ms: int | None = None
    if fields.ends_at is not None and flat.get(fields.ends_at) is not None:
        ends_at_ms = _instant(flat.get(fields.ends_at))
        if ends_at_ms is None:
            return Skipped(key, _expected(fields.ends_at, "an ISO 8601 time", flat))
    elif fields.duration is not None:
        duration = flat.get(fields.duration)
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            return Skipped(key, _expected(fields.duration, "a number", flat))
        ends_at_ms = starts_at_ms + int(duration * fields.duration_unit_s * 1000)
    if ends_at_ms is None:
        wanted = " or ".join(f for f in (fields.ends_at, fields.duration) if f)
        return Skipped(key, f"{wanted}: expected an end or a duration, got none")
    length_s = (ends_at_ms - starts_at_ms) / 1000
    if not 0 < length_s <= MAX_DURATION_S:
        return Skipped(
            key,
            f"expected a session of 1 to {MAX_DURATION_S} s, got {length_s:g} s",
        )

    status = BookingStatus.CONFIRMED
    if fields.booking_status is not None:
        value = flat.get(fields.booking_status)
        mapped = fields.status_values.get(value) if isinstance(value, str) else None
        if mapped is None:
            known = ", ".join(sorted(fields.status_values))
            return Skipped(
                key, _expected(fields.booking_status, f"one of {known}", flat)
            )
        status = mapped

    client = _participant(flat.get(fields.client), fields)
    if client is None:
        return Skipped(key, _expected(fields.client, "a user", flat))
    companion = _participant(flat.get(fields.companion), fields)
    if companion is None:
        return Skipped(key, _expected(fields.companion, "a user", flat))
    if client == companion:
        return Skipped(key, "expected a client and a companion who are two users")

    booking = Booking(
        client_id=client,
        companion_id=companion,
        starts_at_ms=starts_at_ms,
        ends_at_ms=ends_at_ms,
        lobby_lead_s=fields.lobby_lead_s,
        booking_status=status,
    )
    return Parsed(key, booking, _instant(flat.get("updatedAt")))


def user_id_of(user: Any, user_key: UserKey) -> str | None:
    """A users-permissions user's id as sessionclock knows it, if usable."""
    if not isinstance(user, dict):
        return None
    value = user.get(user_key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if _USER_ID.match(text) else None


def _participant(value: Any, fields: FieldMap) -> str | None:
    if fields.participants == "field":
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        text = str(value)
        return text if _USER_ID.match(text) else None
    # A relation: the user itself (v5), or wrapped in `data` (v4).
    if isinstance(value, dict) and "data" in value:
        value = flatten(value["data"])
    return user_id_of(value, fields.user_key)


def _instant(value: Any) -> int | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return to_epoch_ms(moment)


def _expected(name: str, expected: str, flat: Mapping[str, Any]) -> str:
    return f"{name}: expected {expected}, got {_shown(flat.get(name))}"


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[:_MAX_SHOWN_CHARS] + "…"
    return text
