"""The Strapi booking source: keeps sessions in step with a Strapi collection.

Three paths lead from Strapi to sessions, all through `SessionService.upsert`:
the scheduled sync (entries changed since the last pass, by `updatedAt`, page by
page), Strapi's webhook (one entry, fetched again by its id so that only Strapi's
own answer counts), and a first full pass at start-up. One path leads back: the
outbox's write-backs, applied with `deliver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import OrderedDict
from typing import Any

import jwt
import structlog

from sessionclock.bookings.base import SyncResult
from sessionclock.bookings.strapi.client import StrapiClient
from sessionclock.bookings.strapi.fields import (
    FieldMap,
    Parsed,
    Skipped,
    entry_key,
    parse_booking,
    user_id_of,
)
from sessionclock.constants import (
    MAX_DURATION_S,
    STRAPI_JWT_CACHE_ENTRIES,
    STRAPI_MAX_PAGES,
    STRAPI_SYNC_OVERLAP_MS,
)
from sessionclock.core.clock import to_iso
from sessionclock.credentials import same_secret
from sessionclock.errors import (
    BookingSourceUnavailable,
    DeliveryFailed,
    EndpointDisabled,
    InvalidCredentials,
    InvalidInput,
    SessionClockError,
    SessionEnded,
    SessionNotFound,
)
from sessionclock.service.sessions import SessionService
from sessionclock.storage.outbox import Delivery

log = structlog.get_logger(__name__)

_CREATED_OR_CHANGED = frozenset({"entry.create", "entry.update", "entry.publish"})
_GONE = frozenset({"entry.delete", "entry.unpublish"})
_RETRY_AFTER_ERROR_S = 5.0


class StrapiBookings:
    """Bookings from one Strapi collection, through one field map."""

    name = "strapi"
    writes_back = True

    def __init__(
        self,
        client: StrapiClient,
        fields: FieldMap,
        service: SessionService,
        *,
        model: str,
        webhook_secret: str | None,
        sync_interval_s: float,
        page_size: int,
        jwt_cache_s: float,
    ) -> None:
        self.client = client
        self.fields = fields
        self._service = service
        self._clock = service.clock
        self._model = model
        self._webhook_secret = webhook_secret
        self._sync_interval_s = sync_interval_s
        self._page_size = page_size
        self._jwt_cache_s = jwt_cache_s
        self._jwt_cache: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._cursor_ms: int | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_sync_at_ms: int | None = None
        self.last_sync: SyncResult | None = None
        self.last_error: str | None = None

    async def start(self, *, run_sync: bool) -> None:
        if run_sync and self._task is None:
            self._task = asyncio.create_task(self._run(), name="strapi-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.client.aclose()

    async def sync(self) -> SyncResult:
        """One pass over what changed since the last one (the first reads it all)."""
        async with self._lock:
            return await self._sync()

    async def _sync(self) -> SyncResult:
        now_ms = self._clock.now_ms()
        first = self._cursor_ms is None
        updated_since_ms = None
        if self._cursor_ms is not None:
            updated_since_ms = self._cursor_ms - STRAPI_SYNC_OVERLAP_MS
        starts_from_ms = now_ms - MAX_DURATION_S * 1000 if first else None
        newest_ms = self._cursor_ms or 0
        seen = applied = skipped = 0

        page = 1
        while page <= STRAPI_MAX_PAGES:
            found = await self.client.bookings(
                page=page,
                page_size=self._page_size,
                updated_since_ms=updated_since_ms,
                starts_field=self.fields.starts_at,
                starts_from_ms=starts_from_ms,
                populate=self.fields.populate(),
            )
            for entry in found.entries:
                seen += 1
                parsed = parse_booking(entry, self.fields)
                if isinstance(parsed, Skipped):
                    skipped += 1
                    self._log_skipped(parsed, "sync")
                    continue
                if parsed.updated_at_ms is not None:
                    newest_ms = max(newest_ms, parsed.updated_at_ms)
                if await self._apply(parsed, "sync"):
                    applied += 1
            if page >= found.page_count:
                break
            page += 1
        else:
            log.warning(
                "strapi.sync_truncated", pages=STRAPI_MAX_PAGES, seen=seen, first=first
            )

        # Only a pass that read every page moves the cursor: a failed one is redone.
        self._cursor_ms = max(newest_ms, self._cursor_ms or 0) or now_ms
        result = SyncResult(seen=seen, applied=applied, skipped=skipped)
        self.last_sync_at_ms = now_ms
        self.last_sync = result
        self.last_error = None
        level = "info" if applied or skipped or first else "debug"
        getattr(log, level)(
            "strapi.synced",
            first=first,
            seen=seen,
            applied=applied,
            skipped=skipped,
            cursor=to_iso(self._cursor_ms),
        )
        return result

    async def receive(self, secret: str | None, body: bytes) -> dict[str, Any]:
        """Apply one of Strapi's webhook calls: an entry made, changed or deleted."""
        if self._webhook_secret is None:
            raise EndpointDisabled(
                "the Strapi webhook", "SESSIONCLOCK_STRAPI_WEBHOOK_SECRET"
            )
        if secret is None or not same_secret(secret, self._webhook_secret):
            raise InvalidCredentials("the Strapi webhook secret header is wrong")
        expected = "a JSON object from Strapi"
        try:
            notice = json.loads(body)
        except ValueError:
            raise InvalidInput("body", expected, "malformed JSON") from None
        if not isinstance(notice, dict):
            raise InvalidInput("body", expected, type(notice).__name__)

        event = notice.get("event")
        if notice.get("model") != self._model:
            return {"event": event, "result": "ignored", "reason": "another model"}
        key = entry_key(notice.get("entry"), self.fields)
        if key is None:
            self._log_skipped(
                Skipped(None, f"entry: expected an {self.fields.id_key}"), "webhook"
            )
            return {"event": event, "result": "skipped"}

        if event in _GONE:
            return {"event": event, "session_id": key, "result": await self._gone(key)}
        if event not in _CREATED_OR_CHANGED:
            return {"event": event, "session_id": key, "result": "ignored"}

        # Strapi's own answer counts, not the webhook's copy of the entry.
        entry = await self.client.booking(key, self.fields.populate())
        if entry is None:
            return {"event": event, "session_id": key, "result": await self._gone(key)}
        parsed = parse_booking(entry, self.fields)
        if isinstance(parsed, Skipped):
            self._log_skipped(parsed, "webhook")
            return {"event": event, "session_id": key, "result": "skipped"}
        applied = await self._apply(parsed, "webhook")
        return {
            "event": event,
            "session_id": key,
            "result": "applied" if applied else "unchanged",
        }

    async def participant(self, token: str) -> str | None:
        """The user a users-permissions JWT belongs to, asked of Strapi's `me`.

        Answers are remembered for a short while by a hash of the token (never
        the token itself), refusals too, so that a page polling every two seconds
        costs Strapi one call per token and interval.
        """
        if not _looks_like_strapi_jwt(token, time.time()):
            # Garbage and expired tokens cost Strapi nothing.
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        now_s = time.monotonic()
        cached = self._jwt_cache.get(digest)
        if cached is not None and cached[1] > now_s:
            return cached[0]

        user = await self.client.me(token)
        user_id = None if user is None else user_id_of(user, self.fields.user_key)
        self._jwt_cache[digest] = (user_id, now_s + self._jwt_cache_s)
        self._jwt_cache.move_to_end(digest)
        while len(self._jwt_cache) > STRAPI_JWT_CACHE_ENTRIES:
            self._jwt_cache.popitem(last=False)
        log.debug("strapi.jwt_checked", user_id=user_id, accepted=user_id is not None)
        return user_id

    async def deliver(self, delivery: Delivery) -> None:
        """Write a confirmation or an outcome into the booking."""
        data = self.fields.write_back(delivery.type, delivery.payload)
        if not data:
            log.debug(
                "strapi.write_back_unmapped",
                session_id=delivery.session_id,
                type=delivery.type,
            )
            return
        try:
            found = await self.client.update(delivery.session_id, data)
        except BookingSourceUnavailable as error:
            raise DeliveryFailed("strapi", error.reason) from None
        if not found:
            log.warning(
                "strapi.write_back_no_booking",
                session_id=delivery.session_id,
                type=delivery.type,
            )
            return
        log.info(
            "strapi.written_back",
            session_id=delivery.session_id,
            type=delivery.type,
            fields=sorted(data),
        )

    def report(self) -> dict[str, Any]:
        last = self.last_sync
        return {
            "source": self.name,
            "url": self.client.base_url,
            "collection": self.client.collection,
            "last_sync_at": None
            if self.last_sync_at_ms is None
            else to_iso(self.last_sync_at_ms),
            "last_sync": None
            if last is None
            else {"seen": last.seen, "applied": last.applied, "skipped": last.skipped},
            "last_error": self.last_error,
            "cursor": None if self._cursor_ms is None else to_iso(self._cursor_ms),
        }

    async def _apply(self, parsed: Parsed, path: str) -> bool:
        """Upsert one booking's session; True when that created or changed it."""
        before = await self._service.repository.get(parsed.session_id)
        try:
            session, created = await self._service.upsert(
                parsed.session_id, parsed.booking
            )
        except SessionEnded as error:
            if before is not None and before.booking() != parsed.booking:
                log.info(
                    "strapi.booking_after_end",
                    session_id=parsed.session_id,
                    status=error.status,
                    path=path,
                )
            return False
        except SessionClockError as error:
            self._log_skipped(Skipped(parsed.session_id, error.detail), path)
            return False
        changed = created or before is None or before.version != session.version
        if changed:
            log.info(
                "strapi.booking_applied",
                session_id=session.id,
                created=created,
                status=session.status.value,
                booking_status=session.booking_status.value,
                version=session.version,
                path=path,
            )
        return changed

    async def _gone(self, key: str) -> str:
        """A booking deleted in Strapi cancels its session."""
        try:
            session = await self._service.cancel(key)
        except SessionNotFound:
            return "unknown"
        except SessionEnded:
            return "ended"
        log.info("strapi.booking_deleted", session_id=key, status=session.status.value)
        return "cancelled"

    def _log_skipped(self, skipped: Skipped, path: str) -> None:
        log.warning(
            "strapi.entry_skipped",
            entry_id=skipped.entry_id,
            reason=skipped.reason,
            path=path,
        )

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
                delay_s = self._sync_interval_s
            except BookingSourceUnavailable as error:
                self.last_error = error.detail
                log.warning("strapi.sync_failed", error=error.detail)
                delay_s = min(self._sync_interval_s, _RETRY_AFTER_ERROR_S)
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                log.error("strapi.sync_crashed", exc_info=error)
                delay_s = self._sync_interval_s
            await asyncio.sleep(delay_s)


def _looks_like_strapi_jwt(token: str, now_s: float) -> bool:
    """Whether a token is shaped like a users-permissions JWT that has not expired.

    Nothing here is verified: only Strapi can. This keeps tokens that cannot be
    one from costing Strapi a request each.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return False
    expires_at_s = claims.get("exp")
    return (
        isinstance(claims.get("id"), int | str)
        and isinstance(expires_at_s, int | float)
        and expires_at_s > now_s
    )
