"""Bookings that live in sessionclock: the platform creates them through the API."""

from __future__ import annotations

from typing import Any

from sessionclock.bookings.base import SyncResult
from sessionclock.errors import DeliveryFailed, EndpointDisabled
from sessionclock.storage.outbox import Delivery


class LocalBookings:
    """The default source: nothing to sync, nothing to write back."""

    name = "local"
    writes_back = False

    async def start(self, *, run_sync: bool) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def sync(self) -> SyncResult:
        return SyncResult()

    async def receive(self, secret: str | None, body: bytes) -> dict[str, Any]:
        raise EndpointDisabled(
            "the booking webhook", "SESSIONCLOCK_BOOKING_SOURCE=strapi"
        )

    async def participant(self, token: str) -> str | None:
        return None

    async def deliver(self, delivery: Delivery) -> None:
        raise DeliveryFailed("local bookings", "the local source writes nothing back")

    def report(self) -> dict[str, Any]:
        return {"source": self.name}
