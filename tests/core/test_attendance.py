"""The attendance ledger, computed from the events that nodes recorded."""

from __future__ import annotations

from dataclasses import replace

from sessionclock.core.attendance import (
    AttendanceEvent,
    AttendanceKind,
    ledger,
    ledger_json,
)
from sessionclock.core.session import BookingStatus, Role, Session, Status
from tests.helpers import CLIENT, COMPANION, MINUTE_MS, T0_MS

JOINED = AttendanceKind.JOINED
LEFT = AttendanceKind.LEFT
MEDIA = AttendanceKind.MEDIA_CONNECTED
LOST = AttendanceKind.MEDIA_LOST
ENDS_AT_MS = T0_MS + 30 * MINUTE_MS

READY = Session(
    id="s-1",
    client_id=CLIENT,
    companion_id=COMPANION,
    starts_at_ms=T0_MS,
    ends_at_ms=ENDS_AT_MS,
    lobby_lead_s=300,
    booking_status=BookingStatus.CONFIRMED,
    status=Status.READY,
)
ENDED = replace(READY, status=Status.EXPIRED, ended_at_ms=ENDS_AT_MS)


def _at(minutes: float) -> int:
    return T0_MS + int(minutes * MINUTE_MS)


def _event(
    role: Role, kind: AttendanceKind, minutes: float, connection: str = "1"
) -> AttendanceEvent:
    return AttendanceEvent(
        session_id="s-1",
        role=role,
        user_id=READY.user_id(role),
        kind=kind,
        at_ms=_at(minutes),
        connection_id=f"{role.value}-{connection}",
        node="n",
    )


def test_ledger_counts_time_present_until_each_leave() -> None:
    """Each participant is present from its join to its leave; the call starts
    when both are in it."""
    events = [
        _event(Role.CLIENT, JOINED, 1),
        _event(Role.COMPANION, JOINED, 2),
        _event(Role.CLIENT, LEFT, 10),
        _event(Role.COMPANION, LEFT, 12),
    ]

    account = ledger(ENDED, events, now_ms=_at(60))

    assert account.call_started_at_ms == _at(2)
    assert account.call_ended_at_ms == ENDS_AT_MS
    assert account.participants[Role.CLIENT].present_ms == 9 * MINUTE_MS
    assert account.participants[Role.COMPANION].present_ms == 10 * MINUTE_MS
    assert account.participants[Role.CLIENT].last_left_at_ms == _at(10)


def test_ledger_counts_reconnects_and_not_overlapping_sockets() -> None:
    """A leave and a new join count as a reconnect; a second socket joining
    before the first left counts once."""
    events = [
        _event(Role.CLIENT, JOINED, 1, "a"),
        _event(Role.CLIENT, LEFT, 5, "a"),
        _event(Role.CLIENT, JOINED, 5, "b"),
        _event(Role.CLIENT, JOINED, 6, "c"),
        _event(Role.CLIENT, LEFT, 8, "b"),
        _event(Role.CLIENT, LEFT, 9, "c"),
    ]

    client = ledger(ENDED, events, now_ms=_at(60)).participants[Role.CLIENT]

    assert client.joins == 2
    assert client.reconnects == 1
    assert client.present_ms == 8 * MINUTE_MS
    assert client.first_joined_at_ms == _at(1)


def test_ledger_closes_an_open_join_at_the_end_or_now() -> None:
    """A join without a leave lasts until the session ended, or until now."""
    events = [_event(Role.COMPANION, JOINED, 20)]

    ended = ledger(ENDED, events, now_ms=_at(90))
    running = ledger(READY, events, now_ms=_at(25))

    assert ended.participants[Role.COMPANION].present_ms == 10 * MINUTE_MS
    assert running.participants[Role.COMPANION].present_ms == 5 * MINUTE_MS
    assert running.call_started_at_ms is None
    assert running.call_ended_at_ms is None


def test_ledger_cuts_events_after_the_end() -> None:
    """A socket that left after ends_at is counted only until ends_at."""
    events = [_event(Role.CLIENT, JOINED, 25), _event(Role.CLIENT, LEFT, 45)]

    client = ledger(ENDED, events, now_ms=_at(60)).participants[Role.CLIENT]

    assert client.present_ms == 5 * MINUTE_MS
    assert client.last_left_at_ms == ENDS_AT_MS


def test_ledger_adds_up_connected_media() -> None:
    """Media reports add up the time the browser said the media flowed."""
    events = [
        _event(Role.CLIENT, JOINED, 1),
        _event(Role.CLIENT, MEDIA, 2),
        _event(Role.CLIENT, LOST, 4),
        _event(Role.CLIENT, MEDIA, 5),
        _event(Role.CLIENT, LEFT, 7),
    ]

    client = ledger(ENDED, events, now_ms=_at(60)).participants[Role.CLIENT]

    assert client.media_connected_ms == 4 * MINUTE_MS


def test_ledger_json_names_every_field_in_seconds_and_iso() -> None:
    """The endpoint's JSON gives ISO times, seconds and each event in order."""
    events = [_event(Role.COMPANION, JOINED, 3), _event(Role.CLIENT, JOINED, 1)]

    body = ledger_json(ledger(READY, events, now_ms=_at(4)))

    assert body["call_started_at"] == "2026-12-03T18:03:00.000Z"
    assert body["participants"]["client"]["present_s"] == 180.0
    assert body["participants"]["companion"]["first_joined_at"] == (
        "2026-12-03T18:03:00.000Z"
    )
    assert [e["role"] for e in body["events"]] == ["client", "companion"]
    assert body["events"][0]["detail"] is None
