"""The hub: this node's live connections, and the news the bus brings them.

Every connection has an outbox that its writer (a socket's send loop, an event
stream's generator) drains, so one slow reader never holds up another. A frame is
encoded once per message and handed to every connection of the session; a
connection never gets a snapshot older than the last it got. Every sync interval,
and whenever the bus reconnects, the hub compares the versions it has sent with the
database's and pushes what is missing: that is what bounds the cost of a lost
message to one interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from enum import IntEnum
from typing import Any

import structlog

from sessionclock.bus.base import BusMessage, EventBus
from sessionclock.constants import PRESENCE_REFRESH_S, WS_OUTBOX_FRAMES
from sessionclock.core.session import ROLES, Role, Session, Status, snapshot
from sessionclock.errors import SessionNotFound
from sessionclock.metrics import Metrics
from sessionclock.realtime.presence import Entry, NodeReport, Presence
from sessionclock.service.sessions import SessionService

log = structlog.get_logger(__name__)

# With the bus up, how often the hub still checks every version against the database.
_CONNECTED_RESYNC_S = 60.0
# How many connections one presence round trip renews. The chunks of one round are
# spread over this share of the refresh interval, so that renewing thousands of
# entries never holds the loop for long at once; with the pause before the next
# round, entries are renewed well within their expiry.
_PRESENCE_CHUNK = 250
_PRESENCE_SPREAD = 0.2


class CloseCode(IntEnum):
    """WebSocket close codes this service uses (RFC 6455 and the 4000 range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TOO_MANY_BAD_FRAMES = 4400
    NOT_A_PARTICIPANT = 4403
    TOO_SLOW = 4408
    TOO_MANY_MESSAGES = 4429


class Outbox:
    """The frames waiting for one reader, at most `maxsize`.

    A reader either awaits `get` (an event stream's generator) or registers
    `on_frame`, called after every frame queued, and drains with `get_nowait` (a
    socket, whose writer runs only while there is something to send). It does what
    `asyncio.Queue` does here at a third of the memory: a node holds one per
    connection, thousands of them.
    """

    __slots__ = ("_frames", "_maxsize", "_waiter", "on_frame")

    def __init__(self, maxsize: int) -> None:
        self._frames: deque[str | None] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self.on_frame: Callable[[], None] | None = None

    def empty(self) -> bool:
        return not self._frames

    def put_nowait(self, frame: str | None) -> None:
        if len(self._frames) >= self._maxsize:
            raise asyncio.QueueFull
        self._frames.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self.on_frame is not None:
            self.on_frame()

    def get_nowait(self) -> str | None:
        if not self._frames:
            raise asyncio.QueueEmpty
        return self._frames.popleft()

    async def get(self) -> str | None:
        while not self._frames:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._frames.popleft()


class Connection:
    """One participant's live connection to one session: a socket or a stream."""

    __slots__ = (
        "call_peer_id",
        "call_until_ms",
        "close_code",
        "id",
        "kind",
        "media_state",
        "outbox",
        "role",
        "session_id",
        "user_id",
        "version",
    )

    def __init__(self, session_id: str, user_id: str, role: Role, kind: str) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.session_id = session_id
        self.user_id = user_id
        self.role = role
        self.kind = kind
        self.version = 0
        self.outbox = Outbox(WS_OUTBOX_FRAMES)
        self.close_code: CloseCode | None = None
        # The built-in call: the peer this socket joined as, and until when.
        self.call_peer_id: str | None = None
        self.call_until_ms = 0
        self.media_state: str | None = None

    @property
    def in_call(self) -> bool:
        return self.call_peer_id is not None

    @property
    def entry(self) -> Entry:
        return (self.session_id, self.role, self.id)

    def push(self, frame: str) -> None:
        """Queue a frame; a reader too slow to keep up is told to go away."""
        if self.close_code is not None:
            return
        try:
            self.outbox.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(CloseCode.TOO_SLOW)

    def close(self, code: CloseCode) -> None:
        """Ask the writer to close; it sends what is queued first, room permitting."""
        if self.close_code is not None:
            return
        self.close_code = code
        while True:
            try:
                self.outbox.put_nowait(None)
                return
            except asyncio.QueueFull:
                # A reader too slow to empty its queue loses what is left in it.
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.outbox.get_nowait()


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields}, separators=(",", ":"))


class Hub:
    """Fans the bus's news out to this node's connections."""

    def __init__(
        self,
        service: SessionService,
        bus: EventBus,
        presence: Presence,
        metrics: Metrics,
        *,
        node: str,
        sync_interval_s: float,
    ) -> None:
        self._service = service
        self._bus = bus
        self._presence = presence
        self._metrics = metrics
        self._node = node
        self._sync_interval_s = sync_interval_s
        self._by_session: dict[str, set[Connection]] = {}
        self._online: dict[str, dict[Role, bool]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_resync_s = 0.0

    @property
    def connection_count(self) -> int:
        return sum(len(connections) for connections in self._by_session.values())

    @property
    def session_count(self) -> int:
        return len(self._by_session)

    def report(self) -> NodeReport:
        """This node's connections now, as the debug page shows them."""
        return NodeReport(
            self._node,
            self.connection_count,
            self.session_count,
            self._service.clock.now_ms(),
        )

    def connections(self) -> Iterator[Connection]:
        for connections in self._by_session.values():
            yield from connections

    async def attach(self, connection: Connection, session: Session) -> None:
        """Register a connection and give it the session's snapshot at once."""
        self._by_session.setdefault(connection.session_id, set()).add(connection)
        self._metrics.connections.labels(connection.kind).inc()
        await self._presence.join(connection.entry)
        online = await self._presence.online(connection.session_id)
        self._online[connection.session_id] = online
        connection.version = session.version
        connection.push(self._snapshot_frame(session))
        log.info(
            "connection.opened",
            session_id=connection.session_id,
            user_id=connection.user_id,
            role=connection.role.value,
            kind=connection.kind,
            node=self._node,
        )
        await self._announce_presence(connection.session_id, online)

    async def detach(self, connection: Connection) -> None:
        connections = self._by_session.get(connection.session_id)
        if connections is None or connection not in connections:
            return
        connections.discard(connection)
        self._metrics.connections.labels(connection.kind).dec()
        if not connections:
            del self._by_session[connection.session_id]
            self._online.pop(connection.session_id, None)
        await self._presence.leave(connection.entry)
        log.info(
            "connection.closed",
            session_id=connection.session_id,
            user_id=connection.user_id,
            role=connection.role.value,
            kind=connection.kind,
            close_code=connection.close_code and int(connection.close_code),
            node=self._node,
        )
        online = await self._presence.online(connection.session_id)
        await self._announce_presence(connection.session_id, online)

    def online(self, session_id: str) -> dict[Role, bool] | None:
        return self._online.get(session_id)

    async def on_bus(self, message: BusMessage) -> None:
        """Deliver one message to the connections of its session on this node."""
        if message.type == "presence":
            online = {role: bool(message.data.get(role.value)) for role in ROLES}
            if message.session_id in self._by_session:
                self._online[message.session_id] = online
                self._push_all(
                    message.session_id, frame("presence", online=message.data)
                )
            return

        if message.type in ("call", "signal"):
            self._relay(message)
            return

        connections = self._by_session.get(message.session_id)
        if not connections or message.session is None:
            return
        session = message.session
        if message.type == "snapshot":
            self._push_snapshot(session, connections)
        elif message.type == "warning":
            remaining_s = message.data.get("remaining_s")
            self._push_all(
                session.id,
                frame("warning", remaining_s=remaining_s, version=session.version),
            )

    def _relay(self, message: BusMessage) -> None:
        """Hand a call message to the other participant's connections here.

        Signalling goes only to sockets that joined the call; membership news
        (`call`) to every socket of that participant, so its page knows.
        """
        to_role = message.data.get("to")
        encoded = message.data.get("frame")
        if not isinstance(encoded, str):
            return
        for connection in self._by_session.get(message.session_id, ()):
            if connection.role.value != to_role or connection.kind != "websocket":
                continue
            if message.type == "signal" and not connection.in_call:
                continue
            connection.push(encoded)

    async def resync(self) -> int:
        """Push every snapshot the database has newer than what was sent; how many."""
        stale: list[str] = []
        session_ids = list(self._by_session)
        for start in range(0, len(session_ids), 500):
            chunk = session_ids[start : start + 500]
            versions = await self._service.repository.versions(chunk)
            for session_id in chunk:
                sent = min(
                    (c.version for c in self._by_session.get(session_id, ())),
                    default=None,
                )
                stored = versions.get(session_id)
                if sent is not None and stored is not None and stored > sent:
                    stale.append(session_id)
        for session_id in stale:
            with contextlib.suppress(SessionNotFound):
                session = await self._service.get(session_id)
                self._push_snapshot(session, self._by_session.get(session_id, set()))
        if stale:
            log.info("hub.resynced", sessions=len(stale), node=self._node)
        return len(stale)

    async def start(self) -> None:
        self._bus.subscribe(self.on_bus)
        self._bus.on_reconnect(self._on_reconnect)
        self._tasks = [
            asyncio.create_task(
                self._every(self._sync_interval_s, self._resync_if_needed),
                name="hub-resync",
            ),
            asyncio.create_task(
                self._every(PRESENCE_REFRESH_S, self._refresh_presence),
                name="hub-presence",
            ),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for connection in list(self.connections()):
            connection.close(CloseCode.GOING_AWAY)

    async def _resync_if_needed(self) -> None:
        """Read the database every sync interval while the bus is away, and every
        `_CONNECTED_RESYNC_S` while it works: pub/sub loses nothing while it is up,
        and reading every session every interval costs more than it finds."""
        now_s = asyncio.get_running_loop().time()
        if self._bus.connected and now_s - self._last_resync_s < _CONNECTED_RESYNC_S:
            return
        self._last_resync_s = now_s
        await self.resync()

    async def _on_reconnect(self) -> None:
        await self.resync()
        await self._refresh_presence()

    async def _every(
        self, interval_s: float, work: Callable[[], Awaitable[object]]
    ) -> None:
        """Run `work` every interval; presence renews on its own clock, whatever the
        sync interval, so that entries never outlive their expiry unrenewed."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub.maintenance_failed", node=self._node)

    async def _refresh_presence(self) -> None:
        await self._presence.report_node(self.report())
        if not self._presence.shared:
            return
        entries = [c.entry for c in self.connections()]
        session_ids = list(self._by_session)
        chunks = math.ceil(len(entries) / _PRESENCE_CHUNK) + math.ceil(
            len(session_ids) / _PRESENCE_CHUNK
        )
        # A few hundred connections take one chunk each way: no need to pace.
        pause_s = 0.0 if chunks <= 2 else PRESENCE_REFRESH_S * _PRESENCE_SPREAD / chunks
        for start in range(0, len(entries), _PRESENCE_CHUNK):
            await self._presence.refresh(entries[start : start + _PRESENCE_CHUNK])
            await asyncio.sleep(pause_s)
        # A node that died leaves entries that expire; tell who is still here.
        for start in range(0, len(session_ids), _PRESENCE_CHUNK):
            chunk = session_ids[start : start + _PRESENCE_CHUNK]
            for session_id, online in (await self._presence.online_many(chunk)).items():
                if online != self._online.get(session_id):
                    await self._announce_presence(session_id, online)
            await asyncio.sleep(pause_s)

    async def _announce_presence(
        self, session_id: str, online: dict[Role, bool]
    ) -> None:
        data = {role.value: online[role] for role in ROLES}
        await self._bus.publish(BusMessage("presence", session_id, data=data))

    def _push_snapshot(self, session: Session, connections: set[Connection]) -> None:
        fresh = [c for c in connections if c.version < session.version]
        if not fresh:
            return
        encoded = self._snapshot_frame(session)
        for connection in fresh:
            if session.user_id(connection.role) != connection.user_id:
                # The booking now names somebody else: this user sees no more.
                connection.close(CloseCode.NOT_A_PARTICIPANT)
                continue
            if session.status is not Status.READY:
                # The call is over (or was never open): no more signalling.
                connection.call_peer_id = None
            connection.version = session.version
            connection.push(encoded)

    def _snapshot_frame(self, session: Session) -> str:
        now_ms = self._service.clock.now_ms()
        state = snapshot(session, now_ms, self._online.get(session.id))
        return frame("snapshot", session=state)

    def _push_all(self, session_id: str, encoded: str) -> None:
        for connection in self._by_session.get(session_id, ()):
            connection.push(encoded)
