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

# A node renews every connection it holds every PRESENCE_REFRESH_S, and asks who is
# online in every session it serves: thousands of commands a round. redis-py spends
# about 15 µs of Python packing each command of a pipeline, so a chunk of 250
# connections held the event loop for 5 to 10 ms. As scripts, a chunk is one
# command either way. The scripts touch several keys, which one Redis allows and a
# Redis Cluster would not (sessionclock uses one Redis).
_RENEW = """
local expires_at_ms, ttl_ms = ARGV[1], ARGV[2]
for i, key in ipairs(KEYS) do
    redis.call('HSET', key, ARGV[i + 2], expires_at_ms)
    redis.call('PEXPIRE', key, ttl_ms)
end
return #KEYS
"""
# The roles with an entry that has not expired, comma-separated, for each key.
_ONLINE_ROLES = """
local now_ms = tonumber(ARGV[1])
local found = {}
for i, key in ipairs(KEYS) do
    local roles = {}
    local fields = redis.call('HGETALL', key)
    for j = 1, #fields, 2 do
        if tonumber(fields[j + 1]) > now_ms then
            roles[#roles + 1] = string.match(fields[j], '^[^|]*')
        end
    end
    found[i] = table.concat(roles, ',')
end
return found
"""

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
        self._renew = redis.register_script(_RENEW)
        self._online_roles = redis.register_script(_ONLINE_ROLES)

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
        if not session_ids:
            return {}
        try:
            results = await self._online_roles(
                keys=[_key(session_id) for session_id in session_ids],
                args=[self._clock.now_ms()],
            )
        except Exception as error:
            log.warning(
                "presence.unavailable", sessions=len(session_ids), error=str(error)
            )
            return await self._local.online_many(session_ids)

        found = {}
        for session_id, listed in zip(session_ids, results, strict=True):
            roles = _roles_in(listed)
            local = await self._local.online(session_id)
            found[session_id] = {role: role in roles or local[role] for role in ROLES}
        return found

    async def refresh(self, entries: Iterable[Entry]) -> None:
        keys = []
        fields = []
        for session_id, role, connection_id in entries:
            keys.append(_key(session_id))
            fields.append(self._field(role, connection_id))
        if not keys:
            return
        expires_at_ms = self._clock.now_ms() + int(PRESENCE_TTL_S * 1000)
        try:
            await self._renew(
                keys=keys, args=[expires_at_ms, int(PRESENCE_TTL_S * 2000), *fields]
            )
        except Exception as error:
            log.warning("presence.unavailable", entries=len(keys), error=str(error))

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


def _roles_in(listed: bytes | str) -> set[Role]:
    """The roles of `_ONLINE_ROLES`' answer for one session."""
    text = listed.decode() if isinstance(listed, bytes) else listed
    return {Role(name) for name in text.split(",") if name}
