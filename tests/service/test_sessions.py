"""The session service across two nodes that do not hear each other's news."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sessionclock.bus.memory import InProcessBus
from sessionclock.core.clock import ManualClock
from sessionclock.core.session import Booking, BookingStatus, Status, Timing
from sessionclock.errors import CallAlreadyOpen
from sessionclock.metrics import Metrics
from sessionclock.service.sessions import SessionService
from sessionclock.storage.database import create_engine, migrate
from sessionclock.storage.repository import SessionRepository
from tests.conftest import Backend
from tests.helpers import MINUTE_MS, T0_MS


@pytest.fixture
async def two_nodes(
    backend: Backend,
) -> AsyncIterator[tuple[SessionService, SessionService]]:
    """Two services on one database, each with a bus of its own (news is lost)."""
    engine = create_engine(backend.database_url)
    await migrate(engine)
    clock = ManualClock(T0_MS)
    nodes = tuple(
        SessionService(
            SessionRepository(engine),
            InProcessBus(),
            clock,
            Timing(),
            Metrics(),
            node=name,
            retention_s=86_400,
        )
        for name in ("a", "b")
    )
    yield nodes[0], nodes[1]
    await engine.dispose()


def _booking() -> Booking:
    return Booking(
        client_id="c",
        companion_id="p",
        starts_at_ms=T0_MS + MINUTE_MS,
        ends_at_ms=T0_MS + 31 * MINUTE_MS,
        lobby_lead_s=300,
        booking_status=BookingStatus.CONFIRMED,
    )


async def test_mark_ready_with_stale_known_version_decides_from_stored_one(
    two_nodes: tuple[SessionService, SessionService],
) -> None:
    """A node whose known version is stale refuses what the stored one refuses."""
    node_a, node_b = two_nodes
    await node_a.create("s-1", _booking())
    await node_a.mark_ready("s-1", "c", True)

    # Node A never hears of this: its known version still has the call unopened.
    opened = await node_b.mark_ready("s-1", "p", True)
    assert opened.status is Status.READY

    with pytest.raises(CallAlreadyOpen):
        await node_a.mark_ready("s-1", "c", False)
    stored = await node_b.get("s-1")
    assert stored.status is Status.READY
    assert stored.version == opened.version


async def test_mark_ready_with_stale_known_version_writes_one_version_more(
    two_nodes: tuple[SessionService, SessionService],
) -> None:
    """A mark decided from a stale version is decided again from the stored one."""
    node_a, node_b = two_nodes
    await node_a.create("s-1", _booking())
    await node_a.mark_ready("s-1", "c", True)
    await node_b.mark_ready("s-1", "c", False)

    # Node A still knows the client as ready; the stored version says not ready.
    marked = await node_a.mark_ready("s-1", "c", True)

    stored = await node_b.get("s-1")
    assert stored == marked
    assert stored.client_ready_at_ms == T0_MS
    assert stored.version == 4
