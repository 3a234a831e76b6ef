"""Statements compiled once for the driver: what qualifies, and the same answers."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Dialect,
    Integer,
    MetaData,
    String,
    Table,
    TypeDecorator,
    bindparam,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from sessionclock.storage.database import DriverStatement, create_engine, migrate
from sessionclock.storage.tables import sessions
from tests.conftest import Backend
from tests.helpers import T0_MS


class _Upper(TypeDecorator[str]):
    """A type SQLAlchemy converts on the way in and out, on every dialect."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else str(value).upper()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else str(value).lower()


_processed = Table(
    "processed",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("data", _Upper),
)


@pytest.mark.parametrize("url", ["sqlite+aiosqlite://", "postgresql+asyncpg://"])
def test_values_that_need_sqlalchemy_are_refused(url: str) -> None:
    """A parameter or a column that SQLAlchemy would convert cannot skip it."""
    dialect = create_engine(url).dialect
    by_json = select(_processed.c.id).where(_processed.c.data == bindparam("d"))
    returns_json = select(_processed.c.data).where(_processed.c.id == bindparam("i"))

    with pytest.raises(ValueError, match="processing"):
        DriverStatement.compile(by_json, dialect)
    with pytest.raises(ValueError, match="processing"):
        DriverStatement.compile(returns_json, dialect)


async def test_same_rows_and_same_errors_as_sqlalchemy(backend: Backend) -> None:
    """Compiled for the driver, a statement finds what `execute` finds, and a
    constraint it breaks raises SQLAlchemy's error, not the driver's."""
    engine = create_engine(backend.database_url)
    await migrate(engine)
    row = {
        "id": "s-driver",
        "client_id": "c",
        "companion_id": "p",
        "starts_at_ms": T0_MS,
        "ends_at_ms": T0_MS + 60_000,
        "lobby_lead_s": 300,
        "lobby_opens_at_ms": T0_MS - 300_000,
        "booking_status": "confirmed",
        "status": "scheduled",
        "absent": "",
        "version": 1,
        "created_at_ms": T0_MS,
        "updated_at_ms": T0_MS,
    }
    by_id = select(sessions.c.id, sessions.c.version).where(
        sessions.c.id == bindparam("session_id")
    )
    add = insert(sessions).values({name: bindparam(name) for name in row})
    try:
        found = DriverStatement.compile(by_id, engine.dialect)
        adding = DriverStatement.compile(add, engine.dialect)
        async with engine.begin() as connection:
            await adding.execute(connection, row)
        async with engine.connect() as connection:
            driver = (await found.execute(connection, {"session_id": "s-driver"})).all()
            ours = (await connection.execute(by_id, {"session_id": "s-driver"})).all()
            missing = await found.execute(connection, {"session_id": "nobody"})
            assert missing.first() is None
        assert [tuple(r) for r in driver] == [tuple(r) for r in ours]
        assert [tuple(r) for r in driver] == [("s-driver", 1)]

        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await adding.execute(connection, row)
        with pytest.raises(KeyError):
            async with engine.connect() as connection:
                await found.execute(connection, {"id": "s-driver"})
    finally:
        await engine.dispose()
