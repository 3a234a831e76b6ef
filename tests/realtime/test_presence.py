"""Presence in Redis: expiry of a silent node's entries, and bursts of changes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from sessionclock.constants import PRESENCE_TTL_S, REDIS_MAX_CONNECTIONS
from sessionclock.core.clock import ManualClock, SystemClock
from sessionclock.core.session import Role
from sessionclock.realtime.presence import RedisPresence
from sessionclock.runtime import redis_client
from tests.helpers import T0_MS


async def test_burst_of_leaves_waits_for_connections_instead_of_failing(
    redis_url: str,
) -> None:
    """Many more leaves at once than pooled connections all reach Redis."""
    redis = redis_client(redis_url)
    presence = RedisPresence(redis, "node-a", SystemClock())
    entries = [
        (f"s-{index}", Role.CLIENT, f"c-{index}")
        for index in range(REDIS_MAX_CONNECTIONS * 5)
    ]
    try:
        await asyncio.gather(*(presence.join(entry) for entry in entries))
        with capture_logs() as logs:
            await asyncio.gather(*(presence.leave(entry) for entry in entries))
        remaining = await redis.keys("sessionclock:presence:*")
    finally:
        await redis.aclose()

    assert [log for log in logs if log["log_level"] == "warning"] == []
    assert remaining == []


async def test_entries_of_a_node_that_stopped_renewing_expire(redis_url: str) -> None:
    """Another node's connections count until their expiry, then no longer."""
    redis = redis_client(redis_url)
    clock = ManualClock(T0_MS)
    node_a = RedisPresence(redis, "node-a", clock)
    node_b = RedisPresence(redis, "node-b", clock)
    try:
        await node_b.join(("p-1", Role.COMPANION, "b-1"))
        await node_b.join(("p-2", Role.CLIENT, "b-2"))
        await node_b.join(("p-2", Role.COMPANION, "b-3"))
        await node_a.join(("p-1", Role.CLIENT, "a-1"))
        seen = await node_a.online_many(["p-1", "p-2", "p-none"])

        # Node B stops renewing; node A renews its own entry.
        clock.advance(int(PRESENCE_TTL_S * 1000) + 1)
        await node_a.refresh([("p-1", Role.CLIENT, "a-1")])
        later = await node_a.online_many(["p-1", "p-2"])
    finally:
        await redis.delete(*(await redis.keys("sessionclock:presence:p-*")))
        await redis.aclose()

    both = {Role.CLIENT: True, Role.COMPANION: True}
    assert seen == {
        "p-1": both,
        "p-2": both,
        "p-none": {Role.CLIENT: False, Role.COMPANION: False},
    }
    assert later == {
        "p-1": {Role.CLIENT: True, Role.COMPANION: False},
        "p-2": {Role.CLIENT: False, Role.COMPANION: False},
    }


async def test_renewal_of_many_entries_is_one_command(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk of entries reaches Redis in one command each way, whatever its size."""
    redis = redis_client(redis_url)
    presence = RedisPresence(redis, "node-a", SystemClock())
    entries = [(f"r-{index}", Role.CLIENT, f"c-{index}") for index in range(250)]
    commands: list[object] = []
    execute_command: Callable[..., Awaitable[Any]] = redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        commands.append(args[0])
        return await execute_command(*args, **options)

    try:
        await presence.refresh(entries[:1])
        await presence.online_many(["r-0"])
        monkeypatch.setattr(redis, "execute_command", counted)
        monkeypatch.setattr(redis, "pipeline", None)
        await presence.refresh(entries)
        online = await presence.online_many([entry[0] for entry in entries])
    finally:
        monkeypatch.undo()
        await redis.delete(*(await redis.keys("sessionclock:presence:r-*")))
        await redis.aclose()

    assert commands == ["EVALSHA", "EVALSHA"]
    assert all(found[Role.CLIENT] for found in online.values())
