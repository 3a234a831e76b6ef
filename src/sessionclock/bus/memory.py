"""The one-node bus: listeners in this process, called in order."""

from __future__ import annotations

import structlog

from sessionclock.bus.base import BusMessage, Listener, ReconnectListener

log = structlog.get_logger(__name__)


class InProcessBus:
    """Delivers each message to the listeners of this process only."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    @property
    def connected(self) -> bool:
        return True

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_reconnect(self, listener: ReconnectListener) -> None:
        """Never called: a bus in the process never loses its connection."""

    async def publish(self, message: BusMessage) -> None:
        await deliver(self._listeners, message)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self._listeners.clear()


async def deliver(listeners: list[Listener], message: BusMessage) -> None:
    """Call every listener; one that fails must not keep the message from the rest."""
    for listener in listeners:
        try:
            await listener(message)
        except Exception:
            log.exception("bus.listener_failed", session_id=message.session_id)
