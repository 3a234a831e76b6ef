"""Sessions in SQL: every transition is one conditional statement.

A change is written with `UPDATE … WHERE id = … AND version = … RETURNING`, so of two
requests or two nodes that computed a change from the same version, exactly one
writes it and the other sees no row and starts again from the new version. The
session's event row goes in the same transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sessionclock.constants import CLEANUP_CHUNK_SESSIONS
from sessionclock.core.machine import Change, Event
from sessionclock.core.notices import Notice, NoticePolicy
from sessionclock.core.session import (
    RECORD_FIELDS,
    ExpiredReason,
    Session,
    Status,
    from_fields,
    to_record,
)
from sessionclock.storage.database import DriverStatement
from sessionclock.storage.outbox import add_notices, purge_delivered
from sessionclock.storage.tables import (
    IS_LIVE,
    IS_TERMINAL,
    cleanup_runs,
    session_events,
    sessions,
)

# The statements of the hot path are built once: SQLAlchemy then finds their
# compiled form by a memoized key instead of walking a new statement per call.
_WRITABLE = [c.name for c in sessions.c if c.name not in ("id", "created_at_ms")]
_EVENT_COLUMNS = ["session_id", "key", "type", "version", "at_ms", "data"]
# What a `Session` is built from, in the order `from_fields` reads a row's values.
_SESSION_COLUMNS = [sessions.c[name] for name in RECORD_FIELDS]
_GET = select(*_SESSION_COLUMNS).where(sessions.c.id == bindparam("session_id"))
_REPLACE = (
    update(sessions)
    .where(
        sessions.c.id == bindparam("where_id"),
        sessions.c.version == bindparam("where_version"),
    )
    .values({name: bindparam(f"new_{name}") for name in _WRITABLE})
    .returning(sessions.c.id)
)


def _with_event_row(written: Any) -> Any:
    """An INSERT of one event row for each row a write CTE returns (PostgreSQL)."""
    cte = written.cte("written")
    values = [
        bindparam(f"event_{name}", type_=session_events.c[name].type)
        for name in _EVENT_COLUMNS
    ]
    return (
        insert(session_events)
        .from_select(_EVENT_COLUMNS, select(*values).select_from(cte))
        .returning(session_events.c.id)
    )


_REPLACE_WITH_EVENT = _with_event_row(_REPLACE)

_NOT_READY = [Status.SCHEDULED.value, Status.WAITING.value]


@dataclass(frozen=True, slots=True)
class CleanupRun:
    ran_at_ms: int
    trigger: str
    node: str
    expired: int
    purged: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    session_id: str
    type: str
    version: int
    at_ms: int
    data: dict[str, Any]


class _Written:
    """The rows a bulk write returned, made into `Session`s only when asked for."""

    __slots__ = ("_rows", "_sessions")

    def __init__(
        self, rows: Sequence[Sequence[Any]], sessions: list[Session] | None = None
    ) -> None:
        self._rows = rows
        self._sessions = sessions

    def __len__(self) -> int:
        return len(self._rows)

    def sessions(self) -> list[Session]:
        if self._sessions is None:
            self._sessions = [_session(row) for row in self._rows]
        return self._sessions


class SessionRepository:
    """The sessions table and its companions, behind methods named for what they do."""

    def __init__(
        self, engine: AsyncEngine, notices: NoticePolicy | None = None
    ) -> None:
        self._engine = engine
        # What the outbox hears of each change, written in the change's transaction.
        self._notices = notices or NoticePolicy()
        self._dialect = engine.dialect.name
        # On PostgreSQL one statement is atomic by itself: reads and the combined
        # writes below run without BEGIN and COMMIT, one round trip each.
        self._single = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self._dialect == "postgresql"
            else engine
        )
        # The statements of every ready mark and every read of one session.
        self._get = DriverStatement.compile(_GET, engine.dialect)
        self._replace_with_event = DriverStatement.compile(
            _REPLACE_WITH_EVENT, engine.dialect
        )

    @property
    def engine(self) -> AsyncEngine:
        """The engine (and its connection pool) these statements run on."""
        return self._engine

    async def ping(self) -> None:
        async with self._single.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def get(self, session_id: str) -> Session | None:
        async with self._single.connect() as connection:
            result = await self._get.execute(connection, {"session_id": session_id})
            row = result.first()
        return None if row is None else _session(row)

    async def insert(self, change: Change, now_ms: int) -> bool:
        """Write a new session; False when its id is taken."""
        session = change.after
        statement = (
            self._insert_ignoring_conflict(sessions)
            .values(**_row(session), created_at_ms=now_ms, updated_at_ms=now_ms)
            .returning(sessions.c.id)
        )
        notices = self._notices.for_change(None, session, change.events, now_ms)
        return await self._write_one(
            statement,
            _with_event_row(statement),
            {},
            session,
            change.events,
            now_ms,
            notices,
        )

    async def replace(self, change: Change, now_ms: int) -> bool:
        """Write a change if the stored version is still the one it started from."""
        before, after = change.before, change.after
        if before is None:
            raise ValueError("a replacement needs the version it starts from")
        params = {f"new_{k}": v for k, v in _row(after).items() if k != "id"}
        params.update(
            new_updated_at_ms=now_ms, where_id=before.id, where_version=before.version
        )
        notices = self._notices.for_change(before, after, change.events, now_ms)
        return await self._write_one(
            _REPLACE,
            self._replace_with_event,
            params,
            after,
            change.events,
            now_ms,
            notices,
        )

    async def versions(self, session_ids: Sequence[str]) -> dict[str, int]:
        """The stored version of each of these sessions (missing ones are left out)."""
        if not session_ids:
            return {}
        query = select(sessions.c.id, sessions.c.version).where(
            sessions.c.id.in_(session_ids)
        )
        async with self._single.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row.id: row.version for row in rows}

    async def for_user(
        self, user_id: str, lobby_opens_before_ms: int | None = None
    ) -> list[Session]:
        """A user's sessions that have not ended, soonest first."""
        query = (
            select(*_SESSION_COLUMNS)
            .where(
                # IS_LIVE in each branch: SQLite plans each branch of an OR on its
                # own, and uses a partial index only where the branch implies it.
                or_(
                    and_(sessions.c.client_id == user_id, IS_LIVE),
                    and_(sessions.c.companion_id == user_id, IS_LIVE),
                ),
            )
            .order_by(sessions.c.starts_at_ms, sessions.c.id)
            .limit(500)
        )
        if lobby_opens_before_ms is not None:
            query = query.where(sessions.c.lobby_opens_at_ms <= lobby_opens_before_ms)
        async with self._single.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_session(row) for row in rows]

    async def live_before(
        self, lobby_opens_before_ms: int, after_ms: int | None = None
    ) -> list[Session]:
        """Live sessions whose lobby opens before a moment (and after another)."""
        query = select(*_SESSION_COLUMNS).where(
            IS_LIVE,
            sessions.c.lobby_opens_at_ms <= lobby_opens_before_ms,
        )
        if after_ms is not None:
            query = query.where(sessions.c.lobby_opens_at_ms > after_ms)
        async with self._single.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_session(row) for row in rows]

    async def expire_overdue(self, now_ms: int, no_show_s: int) -> list[Session]:
        """Expire, in one statement, every live session that time has ended.

        The rules are the state machine's `settle`: at `ends_at` a ready session ends
        with `time_up`; a session whose participants are not both ready ends as a
        no-show at `starts_at + no_show_s` or at `ends_at`, whichever comes first,
        with the roles that were not ready recorded as absent.
        """
        statement = self._expire_statement(now_ms, no_show_s, limit=None)
        return await self._set_based(
            statement, (Event.EXPIRED,), Status.EXPIRED, now_ms
        )

    async def expire_overdue_in_chunks(
        self, now_ms: int, no_show_s: int, chunk: int = CLEANUP_CHUNK_SESSIONS
    ) -> AsyncGenerator[list[Session], None]:
        """Expire what `expire_overdue` would, `chunk` sessions per statement.

        The next chunk's statement is sent as soon as this one's rows arrive, so
        that the database writes it while this chunk's rows become sessions and
        the caller pushes them. When the caller stops early, the statement in
        flight still completes: its sessions are expired, with their event rows,
        but not returned.
        """
        statement = self._expire_statement(now_ms, no_show_s, limit=chunk)

        def next_chunk() -> asyncio.Task[_Written]:
            return asyncio.ensure_future(
                self._write_set(statement, (Event.EXPIRED,), Status.EXPIRED, now_ms)
            )

        pending = next_chunk()
        try:
            while True:
                written = await pending
                full = len(written) == chunk
                if full:
                    pending = next_chunk()
                    # Let it send its statement before this process takes the
                    # loop for the rows of this chunk.
                    await asyncio.sleep(0)
                if written:
                    yield written.sessions()
                if not full:
                    return
        finally:
            if not pending.done():
                # Cancelling would leave the statement's outcome unknown and its
                # connection broken; waiting costs one statement at most.
                with contextlib.suppress(Exception):
                    await pending

    def _expire_statement(
        self, now_ms: int, no_show_s: int, *, limit: int | None
    ) -> Any:
        is_ready = sessions.c.status == Status.READY.value
        no_show_due = and_(
            sessions.c.status.in_(_NOT_READY),
            sessions.c.starts_at_ms + no_show_s * 1000 <= now_ms,
        )
        overdue = and_(
            IS_LIVE,
            or_(sessions.c.ends_at_ms <= now_ms, no_show_due),
        )
        if limit is not None and self._dialect == "postgresql":
            # Chosen by address (ctid), not by key: a row locked here cannot move
            # before the UPDATE of the same statement, which then reads the chosen
            # rows in heap order (a TID scan) instead of looking each one up in the
            # key's index; with a chunk of 10,000 that is a fifth of the statement.
            ctid: ColumnElement[Any] = literal_column("ctid")
            some = (
                select(ctid.label("tid"))
                .select_from(sessions)
                .where(overdue)
                .limit(limit)
                # Rows another writer holds are left to its write or the next run.
                .with_for_update(skip_locked=True)
            )
            # A CTE, read once: as a subquery the planner may scan it again after
            # each write, and every scan finds `limit` new rows.
            chosen = some.cte("chosen").prefix_with("MATERIALIZED")
            tids = func.array(select(chosen.c.tid).scalar_subquery())
            overdue = and_(overdue, ctid == any_(tids))
        elif limit is not None:
            chosen = select(sessions.c.id).where(overdue).limit(limit).cte("chosen")
            overdue = and_(overdue, sessions.c.id.in_(select(chosen.c.id)))

        client_absent = sessions.c.client_ready_at_ms.is_(None)
        companion_absent = sessions.c.companion_ready_at_ms.is_(None)
        return (
            update(sessions)
            .where(overdue)
            .values(
                status=Status.EXPIRED.value,
                expired_reason=case(
                    (is_ready, literal(ExpiredReason.TIME_UP.value)),
                    else_=literal(ExpiredReason.NO_SHOW.value),
                ),
                absent=case(
                    (is_ready, literal("")),
                    (
                        and_(client_absent, companion_absent),
                        literal("client,companion"),
                    ),
                    (client_absent, literal("client")),
                    (companion_absent, literal("companion")),
                    else_=literal(""),
                ),
                ended_at_ms=now_ms,
                version=sessions.c.version + 1,
                updated_at_ms=now_ms,
            )
            .returning(*_SESSION_COLUMNS)
        )

    async def open_due_lobbies(self, now_ms: int, no_show_s: int) -> list[Session]:
        """Open, in one statement, every lobby whose time has come."""
        statement = (
            update(sessions)
            .where(
                sessions.c.status == Status.SCHEDULED.value,
                # Implied by the line above; written out for SQLite, which proves a
                # partial index's WHERE only from the terms as the query writes them.
                IS_LIVE,
                sessions.c.lobby_opens_at_ms <= now_ms,
                sessions.c.ends_at_ms > now_ms,
                sessions.c.starts_at_ms + no_show_s * 1000 > now_ms,
            )
            .values(
                status=Status.WAITING.value,
                version=sessions.c.version + 1,
                updated_at_ms=now_ms,
            )
            .returning(*_SESSION_COLUMNS)
        )
        return await self._set_based(
            statement, (Event.LOBBY_OPENED,), Status.WAITING, now_ms
        )

    async def record_warning(
        self, session: Session, remaining_s: int, now_ms: int
    ) -> bool:
        """Note that a warning fired; False when some node already fired it."""
        values = {
            "session_id": session.id,
            "key": f"warning:{remaining_s}:{session.ends_at_ms}",
            "type": "warning",
            "version": session.version,
            "at_ms": now_ms,
            "data": json.dumps({"remaining_s": remaining_s}),
        }
        statement = self._insert_ignoring_conflict(session_events).values(**values)
        async with self._engine.begin() as connection:
            result = await connection.execute(statement.returning(session_events.c.id))
            if result.first() is None:
                return False
            notices = self._notices.for_warning(session, remaining_s, now_ms)
            await add_notices(connection, notices, now_ms)
            return True

    async def events(self, session_id: str) -> list[StoredEvent]:
        """The runtime record of one session, oldest first."""
        query = (
            select(session_events)
            .where(session_events.c.session_id == session_id)
            .order_by(session_events.c.id)
        )
        async with self._single.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            StoredEvent(
                row.session_id, row.type, row.version, row.at_ms, json.loads(row.data)
            )
            for row in rows
        ]

    async def purge_ended(self, ended_before_ms: int) -> int:
        """Delete the runtime records of sessions that ended before a moment."""
        ended = select(sessions.c.id).where(
            IS_TERMINAL, sessions.c.ended_at_ms < ended_before_ms
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(session_events).where(session_events.c.session_id.in_(ended))
            )
            await connection.execute(
                delete(cleanup_runs).where(cleanup_runs.c.ran_at_ms < ended_before_ms)
            )
            await purge_delivered(connection, ended_before_ms)
        return int(result.rowcount or 0)

    async def count_by_status(self) -> dict[str, int]:
        query = select(sessions.c.status, func.count()).group_by(sessions.c.status)
        async with self._single.connect() as connection:
            rows = (await connection.execute(query)).all()
        counts = {status.value: 0 for status in Status}
        counts.update({str(status): int(count) for status, count in rows})
        return counts

    async def record_cleanup(self, run: CleanupRun) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(cleanup_runs).values(
                    ran_at_ms=run.ran_at_ms,
                    trigger=run.trigger,
                    node=run.node,
                    expired=run.expired,
                    purged=run.purged,
                    duration_ms=run.duration_ms,
                )
            )

    async def last_cleanup(self) -> CleanupRun | None:
        query = select(cleanup_runs).order_by(cleanup_runs.c.ran_at_ms.desc()).limit(1)
        async with self._single.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return CleanupRun(
            row.ran_at_ms,
            row.trigger,
            row.node,
            row.expired,
            row.purged,
            row.duration_ms,
        )

    async def _write_one(
        self,
        statement: Any,
        with_event: Any,
        params: dict[str, Any],
        session: Session,
        events: tuple[Event, ...],
        now_ms: int,
        notices: Sequence[Notice] = (),
    ) -> bool:
        """Run a one-row write returning its id; then its event row and notices."""
        # Notices go to another table; with them, PostgreSQL takes the transaction.
        if self._dialect == "postgresql" and not notices:
            # One statement: the event row is inserted from the write's RETURNING.
            event = _event_row(session, events, now_ms)
            params = {**params, **{f"event_{k}": v for k, v in event.items()}}
            async with self._single.connect() as connection:
                if isinstance(with_event, DriverStatement):
                    result = await with_event.execute(connection, params)
                else:
                    result = await connection.execute(with_event, params)
                return result.first() is not None

        async with self._engine.begin() as connection:
            if (await connection.execute(statement, params)).first() is None:
                return False
            await _add_events(connection, [(session, events)], now_ms)
            await add_notices(connection, notices, now_ms)
        return True

    async def _set_based(
        self, statement: Any, events: tuple[Event, ...], status: Status, now_ms: int
    ) -> list[Session]:
        """Run a bulk write returning `_SESSION_COLUMNS`, with an event row each.

        Every session the statement changes must end in `status`.
        """
        written = await self._write_set(statement, events, status, now_ms)
        return written.sessions()

    async def _write_set(
        self, statement: Any, events: tuple[Event, ...], status: Status, now_ms: int
    ) -> _Written:
        """`_set_based`, leaving the rows as they arrived where nothing needs more."""
        # Notices go to another table; with them, PostgreSQL takes the transaction.
        if self._dialect == "postgresql" and not self._notices.active:
            # One statement: the event rows are inserted from the write's RETURNING.
            async with self._single.connect() as connection:
                result = await connection.execute(
                    _with_bulk_event_rows(statement, events, status, now_ms)
                )
                return _Written(result.all())

        async with self._engine.begin() as connection:
            rows = (await connection.execute(statement)).all()
            changed = [_session(row) for row in rows]
            await _add_events(
                connection, [(session, events) for session in changed], now_ms
            )
            if self._notices.active:
                notices = [
                    notice
                    for session in changed
                    for notice in self._notices.for_change(
                        None, session, events, now_ms
                    )
                ]
                await add_notices(connection, notices, now_ms)
        return _Written(rows, changed)

    def _insert_ignoring_conflict(self, table: Any) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table).on_conflict_do_nothing()
        if self._dialect == "sqlite":
            return sqlite.insert(table).on_conflict_do_nothing()
        raise NotImplementedError(f"expected sqlite or postgresql, got {self._dialect}")


def _event_row(
    session: Session, events: tuple[Event, ...], now_ms: int
) -> dict[str, Any]:
    """The event row of one version: named by its last event, keyed by its version."""
    return {
        "session_id": session.id,
        "key": f"v{session.version}",
        "type": events[-1].value,
        "version": session.version,
        "at_ms": now_ms,
        "data": _event_data(events, session.status),
    }


# One text per kind of change, not one per row: a bulk write on SQLite (or with
# notices) builds 10,000 event rows of the same kind, and encoding each one's data
# took a third of its time in Python.
@functools.lru_cache(maxsize=64)
def _event_data(events: tuple[Event, ...], status: Status) -> str:
    return json.dumps({"events": [event.value for event in events], "status": status})


def _with_bulk_event_rows(
    statement: Any, events: tuple[Event, ...], status: Status, now_ms: int
) -> Any:
    """A bulk write that inserts the event row of every session it changes (PostgreSQL).

    `WITH changed AS (UPDATE … RETURNING …), _ AS (INSERT INTO session_events …
    SELECT … FROM changed) SELECT … FROM changed`: one statement, one round trip.
    """
    changed = statement.cte("changed")
    rows = select(
        changed.c.id,
        literal("v", String) + cast(changed.c.version, String),
        literal(events[-1].value, String),
        changed.c.version,
        literal(now_ms, session_events.c.at_ms.type),
        literal(_event_data(events, status), String),
    )
    written = insert(session_events).from_select(_EVENT_COLUMNS, rows)
    return select(*changed.c).add_cte(written.cte("events_written"))


async def _add_events(
    connection: AsyncConnection,
    changed: Iterable[tuple[Session, tuple[Event, ...]]],
    now_ms: int,
) -> None:
    rows = [
        _event_row(session, events, now_ms) for session, events in changed if events
    ]
    if rows:
        await connection.execute(insert(session_events), rows)


def _row(session: Session) -> dict[str, Any]:
    return {**to_record(session), "lobby_opens_at_ms": session.lobby_opens_at_ms}


def _session(row: Sequence[Any]) -> Session:
    """A `Session` from a row of `_SESSION_COLUMNS`, read by position: cheaper than
    SQLAlchemy's mapping view of the row, which bulk writes would build by the
    thousand."""
    return from_fields(row)
