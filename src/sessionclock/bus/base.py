"""What every event bus offers, whichever transport carries it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sessionclock.core.session import Session


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One thing that happened to one session: a new snapshot or a warning."""

    type: str
    session: Session
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def session_id(self) -> str:
        return self.session.id


Listener = Callable[[BusMessage], Awaitable[None]]


class EventBus(Protocol):
    """Publish to every listener on every node; listeners may miss nothing locally."""

    async def publish(self, message: BusMessage) -> None: ...

    def subscribe(self, listener: Listener) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
