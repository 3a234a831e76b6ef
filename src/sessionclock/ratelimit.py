"""Rate limits shared by all nodes when Redis is configured, per process otherwise."""

from __future__ import annotations

import math
import time

import structlog
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from sessionclock.constants import REDIS_PREFIX
from sessionclock.errors import RateLimited

log = structlog.get_logger(__name__)


class RateLimiter:
    """A moving-window limit per key; `hit` raises RateLimited with a retry time."""

    def __init__(self, rule: str, redis_url: str | None, redis: Redis | None) -> None:
        self._item: RateLimitItem = parse(rule)
        storage: Storage
        if redis_url and redis is not None:
            # The node's own connection pool: closing the node closes these too.
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{REDIS_PREFIX}:ratelimit",
                # limits types its options as scalars; redis-py takes a pool here.
                connection_pool=redis.connection_pool,  # type: ignore[arg-type]
            )
        else:
            storage = MemoryStorage()
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, key: str, what: str) -> None:
        try:
            if await self._limiter.hit(self._item, key):
                return
            stats = await self._limiter.get_window_stats(self._item, key)
        except Exception as error:
            # The limits protect idempotent work (cleanup); when their shared store is
            # down, doing the work beats refusing it. Readiness reports Redis as down.
            log.warning("ratelimit.unavailable", key=key, error=str(error))
            return
        retry_after_s = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(what, retry_after_s)

    async def reset(self) -> None:
        await self._storage.reset()
