"""What every event bus offers, whichever transport carries it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sessionclock.core.session import Session, from_record, to_record


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One thing that happened to one session.

    `snapshot` carries the session at its new version; `warning` carries the
    session and `remaining_s`; `presence` carries who is online and no session.
    """

    type: str
    session_id: str
    session: Session | None = None
    data: dict[str, Any] = field(default_factory=dict)
    origin: str | None = None


Listener = Callable[[BusMessage], Awaitable[None]]
ReconnectListener = Callable[[], Awaitable[None]]


class EventBus(Protocol):
    """Publish to every listener on every node; local listeners hear it at once."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, message: BusMessage) -> None: ...

    def subscribe(self, listener: Listener) -> None: ...

    def on_reconnect(self, listener: ReconnectListener) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def encode(message: BusMessage, origin: str) -> bytes:
    """The message as it travels between nodes."""
    record = None if message.session is None else to_record(message.session)
    return json.dumps(
        {
            "type": message.type,
            "session_id": message.session_id,
            "session": record,
            "data": message.data,
            "origin": origin,
        },
        separators=(",", ":"),
    ).encode()


def decode(raw: bytes | str) -> BusMessage:
    """The inverse of `encode`; raises ValueError (or KeyError) on a foreign payload."""
    fields = json.loads(raw)
    record = fields["session"]
    return BusMessage(
        type=str(fields["type"]),
        session_id=str(fields["session_id"]),
        session=None if record is None else from_record(record),
        data=dict(fields.get("data") or {}),
        origin=fields.get("origin"),
    )
