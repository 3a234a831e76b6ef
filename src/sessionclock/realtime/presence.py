"""Presence: which participants hold a live connection (socket or event stream) now.

One node keeps it in memory. Many nodes keep it in Redis, one hash per session whose
fields name a connection (`role|node|connection`) and hold the moment it expires:
each node refreshes its own fields every `PRESENCE_REFRESH_S`, so the connections
of a node that died stop counting `PRESENCE_TTL_S` later, without anybody cleaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import structlog
from redis.asyncio import Redis

from sessionclock.constants import (
    PRESENCE_TTL_S,
    REDIS_NODES_KEY,
    REDIS_PRESENCE_PREFIX,
)
from sessionclock.core.clock import Clock
from sessionclock.core.session import ROLES, Role

log = structlog.get_logger(__name__)

Entry = tuple[str, Role, str]
"""A live connection: (session id, role, connection id)."""


@dataclass(frozen=True, slots=True)
class NodeReport:
    """What one node said of itself at its last presence refresh."""

    node: str
    connections: int
    sessions: int
    reported_at_ms: int


class Presence(Protocol):
    # Whether other nodes' connections count too, with entries that can expire
    # behind this node's back; one node's own presence never changes unseen.
    shared: bool

    async def join(self, entry: Entry) -> None: ...

    async def leave(self, entry: Entry) -> None: ...

    async def online(self, session_id: str) -> dict[Role, bool]: ...

    async def online_many(
        self, session_ids: Sequence[str]
    ) -> dict[str, dict[Role, bool]]: ...

    async def refresh(self, entries: Iterable[Entry]) -> None: ...

    async def report_node(self, report: NodeReport) -> None: ...

    async def nodes(self) -> list[NodeReport]: ...


class LocalPresence:
    """Presence for one node: the connections this process holds."""

    shared = False

    def __init__(self) -> None:
        self._connections: dict[str, dict[str, Role]] = {}
        self._report: NodeReport | None = None

    async def join(self, entry: Entry) -> None:
        session_id, role, connection_id = entry
        self._connections.setdefault(session_id, {})[connection_id] = role

    async def leave(self, entry: Entry) -> None:
        session_id, _role, connection_id = entry
        connections = self._connections.get(session_id, {})
        connections.pop(connection_id, None)
        if not connections:
            self._connections.pop(session_id, None)

    async def online(self, session_id: str) -> dict[Role, bool]:
        roles = set(self._connections.get(session_id, {}).values())
        return {role: role in roles for role in ROLES}

    async def online_many(
        self, session_ids: Sequence[str]
    ) -> dict[str, dict[Role, bool]]:
        return {session_id: await self.online(session_id) for session_id in session_ids}

    async def refresh(self, entries: Iterable[Entry]) -> None:
        return None

    async def report_node(self, report: NodeReport) -> None:
        self._report = report

    async def nodes(self) -> list[NodeReport]:
        return [] if self._report is None else [self._report]


class RedisPresence:
    """Presence shared by every node through Redis, with this node's part in memory.

    When Redis cannot be reached, a node answers from its own connections alone.
    """

    shared = True

    def __init__(self, redis: Redis, node: str, clock: Clock) -> None:
        self._redis = redis
        self._node = node
        self._clock = clock
        self._local = LocalPresence()

    async def join(self, entry: Entry) -> None:
        await self._local.join(entry)
        await self.refresh([entry])

    async def leave(self, entry: Entry) -> None:
        await self._local.leave(entry)
        session_id, role, connection_id = entry
        try:
            await self._redis.hdel(_key(session_id), self._field(role, connection_id))
        except Exception as error:
            log.warning("presence.unavailable", session_id=session_id, error=str(error))

    async def online(self, session_id: str) -> dict[Role, bool]:
        return (await self.online_many([session_id]))[session_id]

    async def online_many(
        self, session_ids: Sequence[str]
    ) -> dict[str, dict[Role, bool]]:
        """Who is online in each session, in one round trip to Redis."""
        pipeline = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipeline.hgetall(_key(session_id))
        try:
            results = await pipeline.execute()
        except Exception as error:
            log.warning(
                "presence.unavailable", sessions=len(session_ids), error=str(error)
            )
            return await self._local.online_many(session_ids)

        now_ms = self._clock.now_ms()
        found = {}
        for session_id, fields in zip(session_ids, results, strict=True):
            roles = {
                _role_of(name)
                for name, expires_at_ms in fields.items()
                if int(expires_at_ms) > now_ms
            }
            local = await self._local.online(session_id)
            found[session_id] = {role: role in roles or local[role] for role in ROLES}
        return found

    async def refresh(self, entries: Iterable[Entry]) -> None:
        expires_at_ms = self._clock.now_ms() + int(PRESENCE_TTL_S * 1000)
        pipeline = self._redis.pipeline(transaction=False)
        count = 0
        for session_id, role, connection_id in entries:
            key = _key(session_id)
            pipeline.hset(key, self._field(role, connection_id), expires_at_ms)
            pipeline.pexpire(key, int(PRESENCE_TTL_S * 2000))
            count += 1
        if not count:
            return
        try:
            await pipeline.execute()
        except Exception as error:
            log.warning("presence.unavailable", entries=count, error=str(error))

    async def report_node(self, report: NodeReport) -> None:
        await self._local.report_node(report)
        try:
            await self._redis.hset(
                REDIS_NODES_KEY, report.node, json.dumps(asdict(report))
            )
        except Exception as error:
            log.warning("presence.unavailable", node=report.node, error=str(error))

    async def nodes(self) -> list[NodeReport]:
        """Every node that reported within the presence expiry; this one at least."""
        try:
            fields = await self._redis.hgetall(REDIS_NODES_KEY)
        except Exception as error:
            log.warning("presence.unavailable", error=str(error))
            return await self._local.nodes()
        oldest_ms = self._clock.now_ms() - int(PRESENCE_TTL_S * 1000)
        reports = [NodeReport(**json.loads(raw)) for raw in fields.values()]
        gone = [report.node for report in reports if report.reported_at_ms < oldest_ms]
        if gone:
            # Nobody else removes a dead node's line; the first reader does.
            try:
                await self._redis.hdel(REDIS_NODES_KEY, *gone)
            except Exception as error:
                log.warning("presence.unavailable", error=str(error))
        return sorted(
            (report for report in reports if report.reported_at_ms >= oldest_ms),
            key=lambda report: report.node,
        )

    def _field(self, role: Role, connection_id: str) -> str:
        return f"{role.value}|{self._node}|{connection_id}"


def _key(session_id: str) -> str:
    return REDIS_PRESENCE_PREFIX + session_id


def _role_of(field: bytes | str) -> Role:
    text = field.decode() if isinstance(field, bytes) else field
    return Role(text.split("|", 1)[0])
