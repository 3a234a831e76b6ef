"""Delivers the outbox: each message at least once, retried with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import structlog

from sessionclock.constants import OUTBOX_BATCH, OUTBOX_CLAIM_MS
from sessionclock.core.clock import Clock
from sessionclock.core.retry import Backoff
from sessionclock.errors import DeliveryFailed
from sessionclock.storage.outbox import Delivery, OutboxRepository

log = structlog.get_logger(__name__)

AttemptResult = Literal["delivered", "retried", "failed"]


class Sender(Protocol):
    """Whatever takes one delivery to its receiver, or raises DeliveryFailed."""

    async def deliver(self, delivery: Delivery) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryPass:
    delivered: int
    retried: int
    failed: int


class OutboxWorker:
    """Polls for due deliveries, and wakes at once when a change was written."""

    def __init__(
        self,
        repository: OutboxRepository,
        senders: Mapping[str, Sender],
        clock: Clock,
        backoff: Backoff,
        *,
        interval_s: float,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.repository = repository
        self._senders = senders
        self._clock = clock
        self._backoff = backoff
        self._interval_s = interval_s
        self._jitter = jitter
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def nudge(self) -> None:
        """Deliver soon: a change that may have written to the outbox happened."""
        self._wake.set()

    async def deliver_due(self) -> DeliveryPass:
        """One pass over what is due now; returns what became of it."""
        results: list[AttemptResult] = []
        now_ms = self._clock.now_ms()
        for delivery in await self.repository.due(now_ms, OUTBOX_BATCH):
            if await self.repository.claim(delivery, now_ms + OUTBOX_CLAIM_MS):
                results.append(await self._deliver_one(delivery))
        return DeliveryPass(
            delivered=results.count("delivered"),
            retried=results.count("retried"),
            failed=results.count("failed"),
        )

    async def _deliver_one(self, delivery: Delivery) -> AttemptResult:
        bound = log.bind(
            event_id=delivery.event_id,
            target=delivery.target,
            type=delivery.type,
            session_id=delivery.session_id,
        )
        sender = self._senders.get(delivery.target)
        try:
            if sender is None:
                raise DeliveryFailed(delivery.target, "no receiver is configured")
            await sender.deliver(delivery)
        except DeliveryFailed as error:
            return await self._failed(delivery, error.reason, bound)
        except Exception as error:
            bound.error("outbox.delivery_crashed", exc_info=error)
            reason = f"{type(error).__name__}: {error}"
            return await self._failed(delivery, reason, bound)

        await self.repository.delivered(delivery, self._clock.now_ms())
        bound.info("outbox.delivered", attempts=delivery.attempts + 1)
        return "delivered"

    async def _failed(
        self,
        delivery: Delivery,
        reason: str,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> AttemptResult:
        attempts = delivery.attempts + 1
        if self._backoff.gives_up_after(attempts):
            await self.repository.failed(delivery, reason, None)
            bound.error("outbox.gave_up", attempts=attempts, error=reason)
            return "failed"
        delay_ms = self._backoff.delay_ms(attempts, self._jitter())
        await self.repository.failed(delivery, reason, self._clock.now_ms() + delay_ms)
        bound.warning(
            "outbox.retry_later", attempts=attempts, retry_in_ms=delay_ms, error=reason
        )
        return "retried"

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception as error:
                # The database may be down for a moment; the rows wait for us.
                log.error("outbox.pass_failed", exc_info=error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            self._wake.clear()
