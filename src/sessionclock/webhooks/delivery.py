"""Delivers one outbox message to the platform's webhook URL, signed."""

from __future__ import annotations

import json

import httpx
import structlog

from sessionclock.constants import (
    WEBHOOK_EVENT_ID_HEADER,
    WEBHOOK_EVENT_TYPE_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
)
from sessionclock.core.clock import Clock
from sessionclock.errors import DeliveryFailed
from sessionclock.storage.outbox import Delivery
from sessionclock.webhooks.signing import signature_header

log = structlog.get_logger(__name__)


class WebhookSender:
    """POSTs a delivery's body with its event id, type and signature."""

    def __init__(
        self, url: str, secret: str, client: httpx.AsyncClient, clock: Clock
    ) -> None:
        self._url = url
        self._secret = secret
        self._client = client
        self._clock = clock

    async def deliver(self, delivery: Delivery) -> None:
        """Send once; raises DeliveryFailed unless the receiver answers 2xx."""
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        timestamp_s = self._clock.now_ms() // 1000
        headers = {
            "Content-Type": "application/json",
            WEBHOOK_EVENT_ID_HEADER: delivery.event_id,
            WEBHOOK_EVENT_TYPE_HEADER: delivery.type,
            WEBHOOK_SIGNATURE_HEADER: signature_header(self._secret, timestamp_s, body),
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as error:
            reason = f"{type(error).__name__}: {error}"
            raise DeliveryFailed("webhook", reason) from None
        if not response.is_success:
            raise DeliveryFailed(
                "webhook", f"expected a 2xx answer, got {response.status_code}"
            )
        log.debug(
            "webhook.delivered",
            event_id=delivery.event_id,
            type=delivery.type,
            session_id=delivery.session_id,
            status=response.status_code,
        )
