"""The garbage collector's pacing: survivors frozen, frozen cycles freed hourly."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from sessionclock.collector import Collector


class _Node:
    """An object in a reference cycle, which only the cyclic collector can free."""

    def __init__(self) -> None:
        self.myself = self


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    """The test process shares its collector: leave nothing frozen behind."""
    yield
    gc.unfreeze()
    gc.collect()


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


def test_young_pass_frees_young_cycles_and_freezes_survivors() -> None:
    collector = Collector(interval_s=60, full_every=60)
    survivor = _Node()
    young = _cycle()

    collector.collect(full=False)

    assert young() is None
    assert gc.get_freeze_count() > 0
    # Frozen: no longer among the objects the collector's passes walk.
    assert not any(tracked is survivor for tracked in gc.get_objects())


def test_frozen_cycle_waits_for_the_full_pass() -> None:
    collector = Collector(interval_s=60, full_every=60)
    frozen = _Node()
    collector.collect(full=False)
    gone = weakref.ref(frozen)
    del frozen

    collector.collect(full=False)
    assert gone() is not None

    collector.collect(full=True)
    assert gone() is None


async def test_run_starts_with_a_full_pass_then_paces_young_ones() -> None:
    collector = Collector(interval_s=0.01, full_every=3)
    with capture_logs() as logs:
        task = asyncio.create_task(collector.run())
        for _ in range(1000):  # ten seconds at most
            if collector.rounds >= 4:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    passes = [log["full"] for log in logs if log["event"] == "gc.collected"]
    assert passes[:5] == [True, False, False, True, False]
    assert all(log["duration_ms"] >= 0 for log in logs)
