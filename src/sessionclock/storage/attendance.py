"""The attendance table: append-only rows, read back in order for the ledger."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sessionclock.core.attendance import AttendanceEvent, AttendanceKind
from sessionclock.core.session import Role
from sessionclock.storage.tables import attendance


class AttendanceRepository:
    """Writes what a node saw of a call; reads one session's events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, event: AttendanceEvent) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                insert(attendance).values(
                    session_id=event.session_id,
                    role=event.role.value,
                    user_id=event.user_id,
                    kind=event.kind.value,
                    at_ms=event.at_ms,
                    connection_id=event.connection_id,
                    node=event.node,
                    detail=event.detail[:200],
                )
            )

    async def events(self, session_id: str) -> list[AttendanceEvent]:
        statement = (
            select(attendance)
            .where(attendance.c.session_id == session_id)
            .order_by(attendance.c.at_ms, attendance.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [
            AttendanceEvent(
                session_id=row.session_id,
                role=Role(row.role),
                user_id=row.user_id,
                kind=AttendanceKind(row.kind),
                at_ms=row.at_ms,
                connection_id=row.connection_id,
                node=row.node,
                detail=row.detail,
            )
            for row in rows
        ]
