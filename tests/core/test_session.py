"""The session as flat primitives: a record by name and the same values by position."""

from __future__ import annotations

import dataclasses

import pytest

from sessionclock.core.session import (
    RECORD_FIELDS,
    BookingStatus,
    ExpiredReason,
    Role,
    Session,
    Status,
    from_fields,
    from_record,
    to_record,
)


def _session(absent: tuple[Role, ...], reason: ExpiredReason | None) -> Session:
    # Every value differs from every other one: a value read from the wrong
    # position cannot pass for the right one.
    return Session(
        id="s-1",
        client_id="c-2",
        companion_id="p-3",
        starts_at_ms=1_000_004,
        ends_at_ms=1_000_005,
        lobby_lead_s=6,
        booking_status=BookingStatus.PENDING,
        status=Status.EXPIRED if reason is not None else Status.WAITING,
        client_ready_at_ms=1_000_009,
        companion_ready_at_ms=None,
        expired_reason=reason,
        absent=absent,
        version=13,
        ended_at_ms=1_000_014 if reason is not None else None,
    )


SESSIONS = [
    _session((), None),
    _session((Role.COMPANION,), ExpiredReason.NO_SHOW),
    _session((Role.CLIENT, Role.COMPANION), ExpiredReason.NO_SHOW),
    _session((), ExpiredReason.TIME_UP),
]


def test_record_fields_follow_the_session_and_its_record() -> None:
    """`RECORD_FIELDS` names the session's fields in order, as `to_record` does."""
    names = tuple(field.name for field in dataclasses.fields(Session))

    assert names == RECORD_FIELDS
    assert tuple(to_record(SESSIONS[0])) == RECORD_FIELDS


@pytest.mark.parametrize("session", SESSIONS)
def test_from_fields_reads_the_values_of_to_record(session: Session) -> None:
    """A record's values in order give back the session, as the record itself does."""
    record = to_record(session)

    assert from_fields(tuple(record.values())) == session
    assert from_record(record) == session
