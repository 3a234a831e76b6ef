"""Builds the booking source and the outbox's senders that a node's settings ask for."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from sessionclock.bookings.base import BookingSource
from sessionclock.bookings.local import LocalBookings
from sessionclock.bookings.strapi.client import StrapiClient
from sessionclock.bookings.strapi.fields import FieldMap, outcome_values, status_values
from sessionclock.bookings.strapi.source import StrapiBookings
from sessionclock.core.notices import NoticePolicy, Target
from sessionclock.core.retry import Backoff
from sessionclock.service.outbox import OutboxWorker, Sender
from sessionclock.service.sessions import SessionService
from sessionclock.settings import Settings
from sessionclock.storage.outbox import OutboxRepository
from sessionclock.webhooks.delivery import WebhookSender


def notice_policy(settings: Settings) -> NoticePolicy:
    """Which notices this node writes into the outbox."""
    return NoticePolicy(
        webhooks=bool(settings.webhook_url),
        write_back=settings.booking_source_kind == "strapi",
    )


def field_map(settings: Settings) -> FieldMap:
    return FieldMap(
        id_key=settings.strapi_id_field,
        starts_at=settings.strapi_starts_at_field,
        ends_at=settings.strapi_ends_at_field,
        duration=settings.strapi_duration_field,
        duration_unit_s=settings.strapi_duration_unit_s,
        booking_status=settings.strapi_status_field,
        status_values=status_values(settings.strapi_status_values),
        client=settings.strapi_client_field,
        companion=settings.strapi_companion_field,
        participants=settings.strapi_participants,
        user_key=settings.strapi_user_key,
        outcome=settings.strapi_outcome_field,
        outcome_values=outcome_values(settings.strapi_outcome_values),
        lobby_lead_s=settings.lobby_lead_s,
    )


@dataclass
class Outbound:
    """The booking source and the outbox worker of one node."""

    bookings: BookingSource
    outbox: OutboxWorker
    _webhook_http: httpx.AsyncClient | None

    async def start(self, *, run_background: bool) -> None:
        await self.bookings.start(run_sync=run_background)
        if run_background:
            await self.outbox.start()

    async def stop(self) -> None:
        await self.outbox.stop()
        await self.bookings.stop()
        if self._webhook_http is not None:
            await self._webhook_http.aclose()


def build_outbound(
    settings: Settings,
    service: SessionService,
    outbox: OutboxRepository,
    *,
    strapi_transport: httpx.AsyncBaseTransport | None = None,
) -> Outbound:
    """The source the settings choose, and the outbox worker that delivers for it."""
    bookings: BookingSource = LocalBookings()
    if settings.booking_source_kind == "strapi":
        assert settings.strapi_url is not None
        assert settings.strapi_api_token is not None
        client = StrapiClient(
            settings.strapi_url,
            settings.strapi_api_token.get_secret_value(),
            settings.strapi_collection,
            timeout_s=settings.strapi_timeout_s,
            transport=strapi_transport,
        )
        secret = settings.strapi_webhook_secret
        bookings = StrapiBookings(
            client,
            field_map(settings),
            service,
            model=settings.strapi_model,
            webhook_secret=None if secret is None else secret.get_secret_value(),
            sync_interval_s=settings.strapi_sync_interval_s,
            page_size=settings.strapi_page_size,
            jwt_cache_s=settings.strapi_jwt_cache_s,
        )

    senders: dict[str, Sender] = {}
    webhook_http = None
    if settings.webhook_url and settings.webhook_secret is not None:
        webhook_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.webhook_timeout_s)
        )
        senders[Target.WEBHOOK.value] = WebhookSender(
            settings.webhook_url,
            settings.webhook_secret.get_secret_value(),
            webhook_http,
            service.clock,
        )
    if bookings.writes_back:
        senders[Target.BOOKING_SOURCE.value] = bookings
    worker = OutboxWorker(
        outbox,
        senders,
        service.clock,
        Backoff(
            base_s=settings.outbox_backoff_base_s,
            cap_s=settings.outbox_backoff_cap_s,
            max_attempts=settings.outbox_max_attempts,
        ),
        interval_s=settings.outbox_interval_s,
    )
    return Outbound(bookings, worker, webhook_http)
