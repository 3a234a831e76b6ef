"""The scheduler's timers: which statements a due deadline runs."""

from __future__ import annotations

from sessionclock.core.clock import ManualClock
from sessionclock.core.session import Booking, BookingStatus, Status
from sessionclock.metrics import Metrics
from sessionclock.service.scheduler import Scheduler
from sessionclock.service.sessions import SessionService
from tests.helpers import MINUTE_MS, T0_MS


def _booking(starts_in_min: int, lead_s: int) -> Booking:
    return Booking(
        client_id="c",
        companion_id="p",
        starts_at_ms=T0_MS + starts_in_min * MINUTE_MS,
        ends_at_ms=T0_MS + (starts_in_min + 30) * MINUTE_MS,
        lobby_lead_s=lead_s,
        booking_status=BookingStatus.CONFIRMED,
    )


def _scheduler(service: SessionService) -> Scheduler:
    return Scheduler(service, Metrics(), sweep_interval_s=30, cleanup_interval_s=3600)


async def _status(service: SessionService, session_id: str) -> Status:
    """The stored status, read without applying time (which would open the lobby)."""
    stored = await service.repository.get(session_id)
    assert stored is not None
    return stored.status


async def test_fire_due_end_leaves_lobbies_to_their_own_timers(
    two_nodes: tuple[SessionService, SessionService],
) -> None:
    """A due end expires its session; a lobby due then opens at the sweep, not here."""
    node_a, _node_b = two_nodes
    scheduler = _scheduler(node_a)
    ending, _ = await node_a.create("ending", _booking(1, lead_s=300))
    scheduler.track(ending)
    # Not tracked here: its lobby opens when the other session ends.
    await node_a.create("untracked", _booking(40, lead_s=540))
    assert isinstance(node_a.clock, ManualClock)
    node_a.clock.advance(31 * MINUTE_MS)

    assert await scheduler.fire_due() > 0
    assert await _status(node_a, "ending") is Status.EXPIRED
    assert await _status(node_a, "untracked") is Status.SCHEDULED

    await scheduler.sweep()
    assert await _status(node_a, "untracked") is Status.WAITING


async def test_fire_due_lobby_opens_every_due_lobby(
    two_nodes: tuple[SessionService, SessionService],
) -> None:
    """A due lobby opening runs the lobby statement, for every lobby due with it."""
    node_a, _node_b = two_nodes
    scheduler = _scheduler(node_a)
    tracked, _ = await node_a.create("tracked", _booking(10, lead_s=300))
    scheduler.track(tracked)
    await node_a.create("untracked", _booking(10, lead_s=300))
    assert isinstance(node_a.clock, ManualClock)
    node_a.clock.advance(5 * MINUTE_MS)

    assert await scheduler.fire_due() == 1
    assert await _status(node_a, "tracked") is Status.WAITING
    assert await _status(node_a, "untracked") is Status.WAITING


async def test_track_wakes_the_timer_only_for_a_sooner_deadline(
    two_nodes: tuple[SessionService, SessionService],
) -> None:
    """A change whose deadlines all come later than the next one leaves the timer."""
    node_a, _node_b = two_nodes
    scheduler = _scheduler(node_a)
    soon, _ = await node_a.create("soon", _booking(10, lead_s=300))
    scheduler.track(soon)
    assert scheduler._wake.is_set()
    scheduler._wake.clear()

    later, _ = await node_a.create("later", _booking(60, lead_s=300))
    scheduler.track(later)
    assert not scheduler._wake.is_set()

    sooner, _ = await node_a.create("sooner", _booking(2, lead_s=60))
    scheduler.track(sooner)
    assert scheduler._wake.is_set()
