"""The outbox in SQL: notices written with their change, claimed, then settled.

A delivery is claimed by moving its next attempt past a lease with a conditional
UPDATE, so that two nodes polling together do not both send it; a node that dies
holding a claim loses it when the lease runs out, and the message is sent again
(at least once, never lost).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sessionclock.core.notices import Notice
from sessionclock.storage.tables import outbox

_MAX_ERROR_CHARS = 500


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row as a worker sees it."""

    id: int
    event_id: str
    target: str
    type: str
    session_id: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at_ms: int
    last_error: str | None
    created_at_ms: int


async def add_notices(
    connection: AsyncConnection, notices: Sequence[Notice], now_ms: int
) -> None:
    """Insert notices on a connection inside the change's transaction."""
    if not notices:
        return
    rows = [
        {
            "event_id": notice.event_id,
            "target": notice.target.value,
            "type": notice.type,
            "session_id": notice.session_id,
            "payload": json.dumps(notice.payload, separators=(",", ":")),
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at_ms": now_ms,
            "created_at_ms": now_ms,
        }
        for notice in notices
    ]
    dialect = connection.dialect.name
    insert_into: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The same change written again (a retried request) carries the same event ids.
    statement = insert_into(outbox).on_conflict_do_nothing(index_elements=["event_id"])
    await connection.execute(statement, rows)


async def purge_delivered(connection: AsyncConnection, delivered_before_ms: int) -> int:
    """Delete deliveries that landed before a moment; pending and failed ones stay."""
    statement = delete(outbox).where(
        outbox.c.status == DeliveryStatus.DELIVERED.value,
        outbox.c.delivered_at_ms < delivered_before_ms,
    )
    result = await connection.execute(statement)
    return int(result.rowcount or 0)


class OutboxRepository:
    """The outbox table behind methods named for what a delivery worker does."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def due(self, now_ms: int, limit: int) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first."""
        query = (
            select(outbox)
            .where(
                outbox.c.status == DeliveryStatus.PENDING.value,
                outbox.c.next_attempt_at_ms <= now_ms,
            )
            .order_by(outbox.c.next_attempt_at_ms, outbox.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_delivery(row._mapping) for row in rows]

    async def claim(self, delivery: Delivery, until_ms: int) -> bool:
        """Take a due delivery for a while; False when another node took it first."""
        statement = (
            update(outbox)
            .where(
                outbox.c.id == delivery.id,
                outbox.c.status == DeliveryStatus.PENDING.value,
                outbox.c.next_attempt_at_ms == delivery.next_attempt_at_ms,
            )
            .values(next_attempt_at_ms=until_ms)
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)

    async def delivered(self, delivery: Delivery, now_ms: int) -> None:
        await self._settle(
            delivery,
            status=DeliveryStatus.DELIVERED.value,
            attempts=delivery.attempts + 1,
            delivered_at_ms=now_ms,
            last_error=None,
        )

    async def failed(
        self, delivery: Delivery, error: str, retry_at_ms: int | None
    ) -> None:
        """Record a failed attempt: try again at `retry_at_ms`, or never (None)."""
        values: dict[str, Any] = {
            "status": DeliveryStatus.FAILED.value,
            "attempts": delivery.attempts + 1,
            "last_error": error[:_MAX_ERROR_CHARS],
        }
        if retry_at_ms is not None:
            values.update(
                status=DeliveryStatus.PENDING.value, next_attempt_at_ms=retry_at_ms
            )
        await self._settle(delivery, **values)

    async def counts(self) -> dict[str, dict[str, int]]:
        """Deliveries by target and status, every status present."""
        query = select(outbox.c.target, outbox.c.status, func.count()).group_by(
            outbox.c.target, outbox.c.status
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        counts: dict[str, dict[str, int]] = {}
        for target, status, count in rows:
            by_status = counts.setdefault(
                str(target), {status.value: 0 for status in DeliveryStatus}
            )
            by_status[str(status)] = int(count)
        return counts

    async def undelivered(self, limit: int = 20) -> list[Delivery]:
        """Pending and failed deliveries, the oldest first (for the debug page)."""
        query = (
            select(outbox)
            .where(outbox.c.status != DeliveryStatus.DELIVERED.value)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_delivery(row._mapping) for row in rows]

    async def for_session(self, session_id: str) -> list[Delivery]:
        query = (
            select(outbox)
            .where(outbox.c.session_id == session_id)
            .order_by(outbox.c.id)
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_delivery(row._mapping) for row in rows]

    async def _settle(self, delivery: Delivery, **values: Any) -> None:
        statement = (
            update(outbox)
            .where(
                outbox.c.id == delivery.id,
                outbox.c.status == DeliveryStatus.PENDING.value,
            )
            .values(**values)
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row["id"],
        event_id=row["event_id"],
        target=row["target"],
        type=row["type"],
        session_id=row["session_id"],
        payload=json.loads(row["payload"]),
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at_ms=row["next_attempt_at_ms"],
        last_error=row["last_error"],
        created_at_ms=row["created_at_ms"],
    )
