"""Where bookings come from: sessionclock's own API, or a platform's Strapi."""

from sessionclock.bookings.base import BookingSource, SyncResult
from sessionclock.bookings.local import LocalBookings

__all__ = ["BookingSource", "LocalBookings", "SyncResult"]
