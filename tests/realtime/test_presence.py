"""Presence in Redis under a burst: thousands of sockets closing at once."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from sessionclock.constants import REDIS_MAX_CONNECTIONS
from sessionclock.core.clock import SystemClock
from sessionclock.core.session import Role
from sessionclock.realtime.presence import RedisPresence
from sessionclock.runtime import redis_client


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
