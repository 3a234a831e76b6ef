"""Engines for SQLite and PostgreSQL, the schema migrations that run on them, and
the hot statements compiled once for their driver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, event, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import ReturnsRows

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any fixed number: nodes starting together on PostgreSQL migrate one at a time.
_MIGRATION_LOCK_KEY = 0x5E55_C10C


def create_engine(
    database_url: str, pool_size: int = 20, pool_timeout_s: float = 10.0
) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout and explicit transactions."""
    if not database_url.startswith("sqlite"):
        # No pre-ping: it costs a round trip on every checkout. A connection that
        # died with its server fails one request (503) and the pool replaces it.
        # No overflow: an overflow connection is opened for one checkout and closed
        # after it, and opening one costs far more than waiting for a pooled one.
        return create_async_engine(
            database_url,
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=pool_timeout_s,
            pool_recycle=1800,
        )

    engine = create_async_engine(database_url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, say when a transaction begins, so that a
        # write transaction starts with its first write and waits for the lock.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement compiled once to its driver's own SQL, for the hottest paths.

    `AsyncConnection.execute` finds a statement's compiled form and builds its
    parameters anew on every call: about a third of a millisecond on the ready
    mark's write, a tenth of that mark's whole answer. `exec_driver_sql` with SQL
    compiled here skips both and keeps the rest of SQLAlchemy: its translation of
    driver errors and its replacement of dead connections. Only a statement whose
    values go to the driver as they are (no bind or result processing) qualifies.
    """

    sql: str
    names: tuple[str, ...]

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = statement.compile(dialect=dialect)
        if not isinstance(compiled, SQLCompiler) or compiled.positiontup is None:
            raise ValueError(f"expected a positional dialect, got {dialect.name}")
        for name, bind in compiled.binds.items():
            if bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                raise ValueError(f"parameter {name!r} needs SQLAlchemy's processing")
        if isinstance(statement, ReturnsRows):
            for column in statement.exported_columns:
                impl = column.type.dialect_impl(dialect)
                if impl.result_processor(dialect, None) is not None:
                    raise ValueError(f"column {column.name!r} needs processing")
        return cls(compiled.string, tuple(compiled.positiontup))

    async def execute(
        self, connection: AsyncConnection, values: Mapping[str, Any]
    ) -> CursorResult[Any]:
        parameters = tuple(values[name] for name in self.names)
        return await connection.exec_driver_sql(self.sql, parameters)


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if database_url is not None:
        config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to run from many nodes at once."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        await connection.run_sync(_upgrade_to_head)


def _upgrade_to_head(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
