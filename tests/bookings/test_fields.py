"""The Strapi field map: entries of both shapes to bookings, and bad ones skipped."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from sessionclock.bookings.strapi.fields import (
    FieldMap,
    Parsed,
    Skipped,
    outcome_values,
    parse_booking,
    status_values,
)
from sessionclock.core.clock import to_iso
from sessionclock.core.notices import Outcome
from sessionclock.core.session import BookingStatus
from tests.helpers import MINUTE_MS, T0_MS

SPANISH = FieldMap(
    status_values=status_values(
        "pendiente=pending,confirmada=confirmed,cancelada=cancelled"
    ),
    outcome="outcome",
    outcome_values=outcome_values("finished=completada,no_show_client=ausente_cliente"),
)


def _entry(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": 7,
        "documentId": "abc123def456",
        "startsAt": to_iso(T0_MS),
        "endsAt": to_iso(T0_MS + 30 * MINUTE_MS),
        "bookingStatus": "pendiente",
        "client": {"id": 1, "documentId": "u1doc", "username": "ana"},
        "companion": {"id": 2, "documentId": "u2doc", "username": "bea"},
        "updatedAt": to_iso(T0_MS - MINUTE_MS),
    }
    entry.update(fields)
    return entry


def test_parse_reads_a_strapi_5_entry() -> None:
    """A flat Strapi 5 entry with user relations becomes a booking by documentId."""
    parsed = parse_booking(_entry(), SPANISH)
    assert isinstance(parsed, Parsed)
    assert parsed.session_id == "abc123def456"
    assert parsed.booking.client_id == "1"
    assert parsed.booking.companion_id == "2"
    assert parsed.booking.starts_at_ms == T0_MS
    assert parsed.booking.ends_at_ms == T0_MS + 30 * MINUTE_MS
    assert parsed.booking.booking_status is BookingStatus.PENDING
    assert parsed.updated_at_ms == T0_MS - MINUTE_MS


def test_parse_reads_a_v4_entry_by_id() -> None:
    """The v4 shape (attributes, relations under data) is read by numeric id."""
    entry = {
        "id": 42,
        "attributes": {
            "startsAt": to_iso(T0_MS),
            "endsAt": to_iso(T0_MS + 30 * MINUTE_MS),
            "bookingStatus": "confirmada",
            "client": {"data": {"id": 1, "attributes": {"username": "ana"}}},
            "companion": {"data": {"id": 2, "attributes": {"username": "bea"}}},
        },
    }
    parsed = parse_booking(entry, replace(SPANISH, id_key="id"))
    assert isinstance(parsed, Parsed)
    assert parsed.session_id == "42"
    assert (parsed.booking.client_id, parsed.booking.companion_id) == ("1", "2")
    assert parsed.booking.booking_status is BookingStatus.CONFIRMED


def test_parse_reads_plain_fields_and_a_duration() -> None:
    """Participants as plain fields and a duration in minutes make a booking too."""
    fields = replace(
        SPANISH,
        participants="field",
        client="clientRef",
        companion="companionRef",
        ends_at=None,
        duration="durationMinutes",
    )
    entry = _entry(clientRef="u-7", companionRef="u-9", durationMinutes=45)
    parsed = parse_booking(entry, fields)
    assert isinstance(parsed, Parsed)
    assert (parsed.booking.client_id, parsed.booking.companion_id) == ("u-7", "u-9")
    assert parsed.booking.ends_at_ms == T0_MS + 45 * MINUTE_MS


def test_parse_names_users_by_the_configured_key() -> None:
    """With user_key documentId the participants are the users' documentIds."""
    parsed = parse_booking(_entry(), replace(SPANISH, user_key="documentId"))
    assert isinstance(parsed, Parsed)
    assert (parsed.booking.client_id, parsed.booking.companion_id) == (
        "u1doc",
        "u2doc",
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        pytest.param("not an object", "expected an object", id="not-object"),
        pytest.param(_entry(documentId=None), "documentId: expected", id="no-id"),
        pytest.param(_entry(documentId="../x"), "documentId: expected", id="bad-id"),
        pytest.param(_entry(startsAt="tomorrow"), "startsAt: expected", id="bad-start"),
        pytest.param(
            _entry(startsAt="2026-12-03T18:00:00"), "startsAt: expected", id="naive"
        ),
        pytest.param(_entry(endsAt=None), "expected an end", id="no-end"),
        pytest.param(_entry(endsAt=to_iso(T0_MS)), "expected a session", id="empty"),
        pytest.param(
            _entry(endsAt=to_iso(T0_MS + 25 * 3600 * 1000)),
            "expected a session",
            id="too-long",
        ),
        pytest.param(
            _entry(bookingStatus="archivada"), "bookingStatus: expected", id="status"
        ),
        pytest.param(_entry(client=None), "client: expected a user", id="no-client"),
        pytest.param(
            _entry(companion={"id": True}), "companion: expected", id="bool-id"
        ),
        pytest.param(_entry(companion={"id": 1}), "two users", id="same-user"),
    ],
)
def test_parse_skips_malformed_entries_with_a_reason(entry: Any, reason: str) -> None:
    """An entry that cannot be a booking is skipped, and the reason says why."""
    parsed = parse_booking(entry, SPANISH)
    assert isinstance(parsed, Skipped)
    assert reason in parsed.reason


def test_write_back_maps_confirmation_and_outcome() -> None:
    """Write-backs set the mapped status value and the mapped outcome value."""
    assert SPANISH.write_back("booking_confirmed", {"booking_status": "confirmed"}) == {
        "bookingStatus": "confirmada"
    }
    assert SPANISH.write_back("outcome", {"outcome": "finished"}) == {
        "outcome": "completada"
    }
    assert SPANISH.write_back("outcome", {"outcome": "no_show_both"}) == {
        "outcome": "no_show_both"
    }


def test_write_back_without_an_outcome_field_writes_nothing() -> None:
    """With no outcome field configured, an outcome sets no field."""
    assert FieldMap().write_back("outcome", {"outcome": "finished"}) == {}


def test_value_maps_refuse_unknown_names() -> None:
    """A status or outcome map naming something unknown is refused with the name."""
    with pytest.raises(ValueError, match="'maybe'"):
        status_values("quizas=maybe")
    with pytest.raises(ValueError, match="'late'"):
        outcome_values("late=tarde")
    with pytest.raises(ValueError, match="pairs"):
        status_values("pending")
    assert outcome_values("")[Outcome.CANCELLED] == "cancelled"
