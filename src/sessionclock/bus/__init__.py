"""The event bus: how a change made on one node reaches everybody who listens."""

from sessionclock.bus.base import BusMessage, EventBus, Listener
from sessionclock.bus.memory import InProcessBus
from sessionclock.bus.redis import RedisBus

__all__ = ["BusMessage", "EventBus", "InProcessBus", "Listener", "RedisBus"]
