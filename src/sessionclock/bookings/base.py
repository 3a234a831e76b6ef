"""The booking source: what the rest of the service asks of wherever bookings live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sessionclock.storage.outbox import Delivery


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What one pass over the source found: entries seen, changed, skipped."""

    seen: int = 0
    applied: int = 0
    skipped: int = 0


class BookingSource(Protocol):
    """Keeps sessions in step with bookings, and tells the bookings what happened.

    `local` keeps bookings in sessionclock itself (created through the HTTP API)
    and does nothing here; `strapi` reads them from a Strapi collection.
    """

    name: str
    writes_back: bool

    async def start(self, *, run_sync: bool) -> None:
        """Begin the scheduled sync (when `run_sync`) and open connections."""

    async def stop(self) -> None:
        """Stop the sync and close connections."""

    async def sync(self) -> SyncResult:
        """Bring sessions in line with the bookings changed since the last pass."""

    async def receive(self, secret: str | None, body: bytes) -> dict[str, Any]:
        """Apply a change notice the source pushed (its webhook), checked by secret."""

    async def participant(self, token: str) -> str | None:
        """The user a credential of the source's own names; None if it is not one."""

    async def deliver(self, delivery: Delivery) -> None:
        """Write one outbox message into the booking; raises DeliveryFailed."""

    def report(self) -> dict[str, Any]:
        """What the debug page and the cleanup status show about the source."""
