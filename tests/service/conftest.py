"""Services on a real database, with buses that do not reach one another."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sessionclock.bus.memory import InProcessBus
from sessionclock.core.clock import ManualClock
from sessionclock.core.session import Timing
from sessionclock.metrics import Metrics
from sessionclock.service.sessions import SessionService
from sessionclock.storage.database import create_engine, migrate
from sessionclock.storage.repository import SessionRepository
from tests.conftest import Backend
from tests.helpers import T0_MS


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
