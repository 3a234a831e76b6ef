"""The many-node bus: Redis pub/sub on one channel, with local delivery first.

Redis only carries news. The database stays the source of truth: a message lost
while Redis is away costs a client at most one sync interval, because every node
re-reads the versions of the sessions it serves when Redis comes back and every
sync interval (see `realtime.hub`).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import Redis

from sessionclock.bus.base import (
    BusMessage,
    Listener,
    ReconnectListener,
    decode,
    encode,
)
from sessionclock.bus.memory import deliver
from sessionclock.constants import REDIS_EVENTS_CHANNEL

log = structlog.get_logger(__name__)

_FIRST_RETRY_S = 0.2
_LAST_RETRY_S = 2.0
# How long one wait for a message lasts: the longest a stop waits for the loop.
_POLL_S = 0.5


class RedisBus:
    """Publishes to this node's listeners at once and to other nodes through Redis."""

    def __init__(self, redis: Redis, node: str) -> None:
        self._redis = redis
        self._node = node
        self._listeners: list[Listener] = []
        self._reconnect_listeners: list[ReconnectListener] = []
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._stopping = False

    @property
    def connected(self) -> bool:
        return self._connected

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_reconnect(self, listener: ReconnectListener) -> None:
        self._reconnect_listeners.append(listener)

    async def publish(self, message: BusMessage) -> None:
        await deliver(self._listeners, message)
        try:
            await self._redis.publish(REDIS_EVENTS_CHANNEL, encode(message, self._node))
        except Exception as error:
            # Other nodes catch up from the database at their next sync.
            log.warning(
                "bus.publish_failed",
                session_id=message.session_id,
                type=message.type,
                error=str(error),
            )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="redis-bus")

    async def stop(self) -> None:
        # A cancellation that arrives while redis-py waits for a message can be
        # swallowed there, so the loop also checks a flag between short waits.
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), _POLL_S * 3)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(self._task, _POLL_S * 3)
        self._listeners.clear()
        self._connected = False

    async def _listen(self) -> None:
        retry_s = _FIRST_RETRY_S
        while not self._stopping:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(REDIS_EVENTS_CHANNEL)
                self._connected = True
                retry_s = _FIRST_RETRY_S
                log.info("bus.subscribed", node=self._node)
                for listener in self._reconnect_listeners:
                    await listener()
                while not self._stopping:
                    raw = await pubsub.get_message(timeout=_POLL_S)
                    if raw is not None:
                        await self._received(raw)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self._connected:
                    log.warning("bus.disconnected", node=self._node, error=str(error))
                self._connected = False
            finally:
                with contextlib.suppress(Exception):
                    # redis-py before 8.2 leaves PubSub.aclose unannotated.
                    await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            if not self._stopping:
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, _LAST_RETRY_S)

    async def _received(self, raw: dict[str, object]) -> None:
        if raw.get("type") != "message":
            return
        payload = raw.get("data")
        if not isinstance(payload, bytes | str):
            return
        try:
            message = decode(payload)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("bus.message_dropped", error=str(error))
            return
        if message.origin != self._node:
            await deliver(self._listeners, message)
