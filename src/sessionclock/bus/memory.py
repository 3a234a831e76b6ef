"""The one-node bus: listeners in this process, called in order."""

from __future__ import annotations

import structlog

from sessionclock.bus.base import BusMessage, Listener

log = structlog.get_logger(__name__)


class InProcessBus:
    """Delivers each message to the listeners of this process only."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, message: BusMessage) -> None:
        for listener in self._listeners:
            # One failing listener must not keep the message from the others.
            try:
                await listener(message)
            except Exception:
                log.exception("bus.listener_failed", session_id=message.session_id)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._listeners.clear()
