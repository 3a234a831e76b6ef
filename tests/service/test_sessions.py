"""The session service: known versions across two nodes, and bulk writes' logs."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from sessionclock.core.clock import ManualClock
from sessionclock.core.session import Booking, BookingStatus, Status
from sessionclock.errors import CallAlreadyOpen
from sessionclock.service import sessions as sessions_module
from sessionclock.service.sessions import SessionService
from tests.helpers import MINUTE_MS, T0_MS


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


def _capture_at(
    level: int, monkeypatch: pytest.MonkeyPatch
) -> list[MutableMapping[str, Any]]:
    """Give the service a logger that drops what is below `level` and keeps the rest."""
    capture = LogCapture()
    logger = structlog.wrap_logger(
        None,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        processors=[capture],
    )
    monkeypatch.setattr(sessions_module, "log", logger)
    return capture.entries


async def _three_ending(service: SessionService) -> None:
    for index in range(3):
        await service.create(f"s-{index}", _booking())
    assert isinstance(service.clock, ManualClock)
    service.clock.advance(31 * MINUTE_MS)


async def test_sweep_at_info_logs_one_line_for_the_batch(
    two_nodes: tuple[SessionService, SessionService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At INFO a sweep that expires three sessions writes one line that names them."""
    node_a, _node_b = two_nodes
    await _three_ending(node_a)
    logs = _capture_at(logging.INFO, monkeypatch)

    swept = await node_a.sweep(open_lobbies=False)

    assert swept.expired == 3
    assert [entry["event"] for entry in logs] == ["scheduler.swept"]
    assert logs[0]["expired"] == 3
    assert sorted(logs[0]["expired_ids"]) == ["s-0", "s-1", "s-2"]
    assert logs[0]["opened_ids"] == []


async def test_bulk_summary_names_at_most_the_first_sessions(
    two_nodes: tuple[SessionService, SessionService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past the cap, the summary still counts every session but names only some."""
    node_a, _node_b = two_nodes
    await _three_ending(node_a)
    monkeypatch.setattr(sessions_module, "BULK_LOG_IDS", 2)
    logs = _capture_at(logging.INFO, monkeypatch)

    run = await node_a.cleanup("manual")

    assert run.expired == 3
    [ran] = [entry for entry in logs if entry["event"] == "cleanup.ran"]
    assert ran["expired"] == 3
    assert len(ran["expired_ids"]) == 2
    assert set(ran["expired_ids"]) < {"s-0", "s-1", "s-2"}


async def test_sweep_at_debug_logs_each_session_too(
    two_nodes: tuple[SessionService, SessionService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At DEBUG each session of the batch gets its own `session.changed` line."""
    node_a, _node_b = two_nodes
    await _three_ending(node_a)
    logs = _capture_at(logging.DEBUG, monkeypatch)

    await node_a.sweep()

    changed = [entry for entry in logs if entry["event"] == "session.changed"]
    assert sorted(entry["session_id"] for entry in changed) == ["s-0", "s-1", "s-2"]
    assert all(entry["bulk"] and entry["log_level"] == "debug" for entry in changed)
    assert logs[-1]["event"] == "scheduler.swept"
