"""Bookings kept in a platform's Strapi 5: sync, webhook, write-back, JWTs."""

from sessionclock.bookings.strapi.client import StrapiClient
from sessionclock.bookings.strapi.fields import FieldMap
from sessionclock.bookings.strapi.source import StrapiBookings

__all__ = ["FieldMap", "StrapiBookings", "StrapiClient"]
