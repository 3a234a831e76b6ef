"""The repository on SQLite and PostgreSQL: conditional writes and set-based rules."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import event, text

from sessionclock.core import machine
from sessionclock.core.session import (
    Booking,
    BookingStatus,
    Role,
    Session,
    Status,
    Timing,
    from_fields,
)
from sessionclock.storage import repository as repository_module
from sessionclock.storage.database import create_engine, migrate
from sessionclock.storage.repository import SessionRepository
from tests.conftest import Backend
from tests.helpers import MINUTE_MS, T0_MS

TIMING = Timing(no_show_s=600, warnings_s=(300, 60))

# Row locks and a statement sent while the last one's rows are read: PostgreSQL's.
ON_POSTGRESQL = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
async def repository(backend: Backend) -> AsyncIterator[SessionRepository]:
    engine = create_engine(backend.database_url)
    await migrate(engine)
    yield SessionRepository(engine)
    await engine.dispose()


def _booking(starts_at_ms: int, duration_s: int = 1800, lead_s: int = 300) -> Booking:
    return Booking(
        client_id="c",
        companion_id="p",
        starts_at_ms=starts_at_ms,
        ends_at_ms=starts_at_ms + duration_s * 1000,
        lobby_lead_s=lead_s,
        booking_status=BookingStatus.PENDING,
    )


async def _stored(repository: SessionRepository, session: Session) -> None:
    change = machine.Change(None, session, (machine.Event.CREATED,))
    assert await repository.insert(change, T0_MS)


def _expired_at_t0(sessions: list[Session]) -> dict[str, Session]:
    """What the core says these sessions become at T0, of those that expire."""
    settled = [machine.settle(session, T0_MS, TIMING).after for session in sessions]
    return {s.id: s for s in settled if s.status is Status.EXPIRED}


def _random_live_session(rng: random.Random, index: int) -> Session:
    """A live session in any consistent state, around T0."""
    starts_at_ms = T0_MS + rng.randint(-60, 60) * MINUTE_MS + rng.randint(0, 999)
    duration_s = rng.choice([60, 600, 1800, 3600])
    status = rng.choice([Status.SCHEDULED, Status.WAITING, Status.READY])
    client = companion = None
    if status is Status.READY:
        client = companion = starts_at_ms - 1000
    elif status is Status.WAITING:
        client = rng.choice([None, starts_at_ms - 2000])
        companion = None if client is not None else rng.choice([None, starts_at_ms])
    return Session(
        id=f"s-{index}",
        client_id="c",
        companion_id="p",
        starts_at_ms=starts_at_ms,
        ends_at_ms=starts_at_ms + duration_s * 1000,
        lobby_lead_s=rng.choice([0, 60, 300]),
        booking_status=BookingStatus.CONFIRMED,
        status=status,
        client_ready_at_ms=client,
        companion_ready_at_ms=companion,
        version=rng.randint(1, 5),
    )


async def test_expire_overdue_agrees_with_state_machine(
    repository: SessionRepository,
) -> None:
    """The set-based expiry statement expires exactly what `settle` expires, alike."""
    rng = random.Random(20261203)
    sessions = [_random_live_session(rng, index) for index in range(300)]
    for session in sessions:
        await _stored(repository, session)

    expired = {
        s.id: s for s in await repository.expire_overdue(T0_MS, TIMING.no_show_s)
    }

    for session in sessions:
        expected = machine.settle(session, T0_MS, TIMING).after
        if expected.status is Status.EXPIRED:
            got = expired.get(session.id)
            assert got is not None, session
            assert got == expected, session
        else:
            assert session.id not in expired, session
            assert await repository.get(session.id) == session


async def test_expire_overdue_in_chunks_expires_each_session_once(
    repository: SessionRepository,
) -> None:
    """Chunked expiry writes what one statement would, each session in one chunk."""
    rng = random.Random(20261204)
    sessions = [_random_live_session(rng, index) for index in range(300)]
    for session in sessions:
        await _stored(repository, session)

    chunks = [
        chunk
        async for chunk in repository.expire_overdue_in_chunks(
            T0_MS, TIMING.no_show_s, chunk=40
        )
    ]

    assert all(len(chunk) <= 40 for chunk in chunks)
    expired = [session for chunk in chunks for session in chunk]
    assert len({session.id for session in expired}) == len(expired)
    assert {session.id: session for session in expired} == _expired_at_t0(sessions)


async def test_expire_overdue_in_chunks_from_two_nodes_expires_each_session_once(
    backend: Backend,
) -> None:
    """Two nodes expiring at once, each on its own pool, write each session once."""
    engines = [create_engine(backend.database_url) for _ in range(2)]
    try:
        await migrate(engines[0])
        node_a, node_b = (SessionRepository(engine) for engine in engines)
        rng = random.Random(20261205)
        sessions = [_random_live_session(rng, index) for index in range(300)]
        for session in sessions:
            await _stored(node_a, session)

        async def expire(node: SessionRepository) -> list[Session]:
            chunks = node.expire_overdue_in_chunks(T0_MS, TIMING.no_show_s, chunk=20)
            return [session async for chunk in chunks for session in chunk]

        expired_a, expired_b = await asyncio.gather(expire(node_a), expire(node_b))

        expired = expired_a + expired_b
        assert len({session.id for session in expired}) == len(expired)
        assert {s.id: s for s in expired} == _expired_at_t0(sessions)
        for session in expired:
            events = await node_a.events(session.id)
            assert [event.type for event in events].count("expired") == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_expire_overdue_in_chunks_stopped_early_writes_chunk_in_flight(
    repository: SessionRepository,
) -> None:
    """A caller that stops after one chunk leaves the next one written, not half."""
    for index in range(5):
        ended = _random_live_session(random.Random(index), index)
        await _stored(repository, replace(ended, ends_at_ms=T0_MS - MINUTE_MS))

    chunks = repository.expire_overdue_in_chunks(T0_MS, TIMING.no_show_s, chunk=2)
    async with contextlib.aclosing(chunks):
        first = await anext(chunks)

    assert len(first) == 2
    counts = await repository.count_by_status()
    assert counts[Status.EXPIRED.value] == 4


@ON_POSTGRESQL
async def test_expire_overdue_in_chunks_sends_next_chunk_before_building_sessions(
    backend: Backend, repository: SessionRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the next chunk is written while this one's rows become sessions."""
    for index in range(5):
        ended = _random_live_session(random.Random(index), index)
        await _stored(repository, replace(ended, ends_at_ms=T0_MS - MINUTE_MS))
    sent: list[str] = []
    sent_when_built: list[int] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("WITH chosen"):
            sent.append(statement)

    def built(row: Sequence[Any]) -> Session:
        sent_when_built.append(len(sent))
        return from_fields(row)

    event.listen(repository.engine.sync_engine, "before_cursor_execute", count)
    monkeypatch.setattr(repository_module, "_session", built)
    chunks = repository.expire_overdue_in_chunks(T0_MS, TIMING.no_show_s, chunk=2)
    sizes = [len(chunk) async for chunk in chunks]

    assert sizes == [2, 2, 1]
    # Two rows a chunk: the rows of chunk n are built once statement n + 1 is out.
    assert sent_when_built == [2, 2, 3, 3, 3]


@ON_POSTGRESQL
async def test_expire_overdue_in_chunks_leaves_rows_another_writer_holds(
    backend: Backend, repository: SessionRepository
) -> None:
    """A session locked by another transaction waits for the next run, then expires."""
    for index in range(5):
        ended = _random_live_session(random.Random(index), index)
        await _stored(repository, replace(ended, ends_at_ms=T0_MS - MINUTE_MS))

    async with repository.engine.connect() as holder, holder.begin():
        await holder.execute(
            text("SELECT id FROM sessions WHERE id = 's-2' FOR UPDATE")
        )
        chunks = repository.expire_overdue_in_chunks(T0_MS, TIMING.no_show_s, chunk=2)
        first = sorted(s.id for chunk in [c async for c in chunks] for s in chunk)
    chunks = repository.expire_overdue_in_chunks(T0_MS, TIMING.no_show_s, chunk=2)
    second = [s.id for chunk in [c async for c in chunks] for s in chunk]

    assert first == ["s-0", "s-1", "s-3", "s-4"]
    assert second == ["s-2"]
    for index in range(5):
        events = await repository.events(f"s-{index}")
        assert [event.type for event in events].count("expired") == 1


async def test_bulk_write_records_one_event_row_per_session(
    repository: SessionRepository,
) -> None:
    """Every session a bulk write changes gets its event row, alike on both backends."""
    rng = random.Random(11)
    sessions = [_random_live_session(rng, index) for index in range(50)]
    for session in sessions:
        await _stored(repository, session)

    expired = await repository.expire_overdue(T0_MS, TIMING.no_show_s)

    assert expired
    for session in expired:
        *_created, event = await repository.events(session.id)
        assert event.type == "expired"
        assert event.version == session.version
        assert event.at_ms == T0_MS
        assert event.data == {"events": ["expired"], "status": "expired"}


async def test_open_due_lobbies_agrees_with_state_machine(
    repository: SessionRepository,
) -> None:
    """The set-based lobby statement opens exactly the lobbies `settle` opens."""
    rng = random.Random(7)
    sessions = [
        replace(_random_live_session(rng, index), status=Status.SCHEDULED)
        for index in range(200)
    ]
    sessions = [
        replace(s, client_ready_at_ms=None, companion_ready_at_ms=None)
        for s in sessions
    ]
    for session in sessions:
        await _stored(repository, session)

    await repository.expire_overdue(T0_MS, TIMING.no_show_s)
    opened = {
        s.id: s for s in await repository.open_due_lobbies(T0_MS, TIMING.no_show_s)
    }

    for session in sessions:
        expected = machine.settle(session, T0_MS, TIMING).after
        if expected.status is Status.WAITING:
            assert opened.get(session.id) == expected, session
        else:
            assert session.id not in opened, session


async def test_replace_with_stale_version_writes_nothing(
    repository: SessionRepository,
) -> None:
    """Of two changes computed from one version, only the first is written."""
    created = machine.create("s-1", _booking(T0_MS), T0_MS, TIMING)
    assert await repository.insert(created, T0_MS)
    session = created.after
    first = machine.mark_ready(session, Role.CLIENT, True, T0_MS, TIMING)
    second = machine.mark_ready(session, Role.COMPANION, True, T0_MS, TIMING)

    assert await repository.replace(first, T0_MS)
    assert not await repository.replace(second, T0_MS)

    stored = await repository.get("s-1")
    assert stored == first.after
    assert [event.version for event in await repository.events("s-1")] == [1, 2]


async def test_insert_taken_id_returns_false(repository: SessionRepository) -> None:
    """Inserting a session under an id that exists reports it and keeps the first."""
    first = machine.create("s-1", _booking(T0_MS), T0_MS, TIMING)
    other = machine.create("s-1", _booking(T0_MS + MINUTE_MS), T0_MS, TIMING)

    assert await repository.insert(first, T0_MS)
    assert not await repository.insert(other, T0_MS)
    assert await repository.get("s-1") == first.after


async def test_record_warning_fires_once(repository: SessionRepository) -> None:
    """A warning for one threshold and one end is recorded once, whoever asks."""
    created = machine.create("s-1", _booking(T0_MS), T0_MS, TIMING)
    await repository.insert(created, T0_MS)

    results = [
        await repository.record_warning(created.after, 300, T0_MS) for _ in range(3)
    ]

    assert results == [True, False, False]
    assert await repository.record_warning(created.after, 60, T0_MS)


async def test_purge_ended_removes_old_runtime_records_and_keeps_history(
    repository: SessionRepository,
) -> None:
    """Purge deletes event rows of sessions ended before the cut, never sessions."""
    old = machine.create("old", _booking(T0_MS - 120 * MINUTE_MS, 60), T0_MS, TIMING)
    recent = machine.create(
        "recent", _booking(T0_MS - 2 * MINUTE_MS, 60), T0_MS, TIMING
    )
    live = machine.create("live", _booking(T0_MS + MINUTE_MS), T0_MS, TIMING)
    for change in (old, recent, live):
        await repository.insert(change, T0_MS)
    assert old.after.ended_at_ms is not None

    # Pretend "old" ended two hours ago by rewriting its end through a change.
    aged = replace(old.after, ended_at_ms=T0_MS - 110 * MINUTE_MS, version=2)
    await repository.replace(
        machine.Change(old.after, aged, (machine.Event.EXPIRED,)), T0_MS
    )

    purged = await repository.purge_ended(T0_MS - 60 * MINUTE_MS)

    assert purged == 2
    assert await repository.events("old") == []
    assert await repository.events("recent") != []
    assert await repository.events("live") != []
    assert await repository.get("old") == aged


async def test_count_by_status_lists_every_status(
    repository: SessionRepository,
) -> None:
    """Counts name every status, with zero for those no session is in."""
    await repository.insert(
        machine.create("s-1", _booking(T0_MS), T0_MS, TIMING), T0_MS
    )

    counts = await repository.count_by_status()

    assert counts == {
        "scheduled": 0,
        "waiting": 1,
        "ready": 0,
        "expired": 0,
        "cancelled": 0,
    }
