"""The booking source's edge: its webhook into sessionclock, and a sync on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from sessionclock.constants import STRAPI_WEBHOOK_SECRET_HEADER
from sessionclock.core.clock import to_iso
from sessionclock.http.deps import PlatformDep, RuntimeDep
from sessionclock.http.schemas import error_responses

router = APIRouter(prefix="/api/bookings", tags=["bookings"])


@router.post("/webhook", responses=error_responses(401, 404, 422, 503))
async def booking_webhook(
    request: Request,
    runtime: RuntimeDep,
    secret: Annotated[
        str | None,
        Header(
            alias=STRAPI_WEBHOOK_SECRET_HEADER,
            description="the shared secret set on the Strapi webhook",
        ),
    ] = None,
) -> dict[str, Any]:
    """The booking source's webhook: a booking changed or went; its session follows."""
    return await runtime.bookings.receive(secret, await request.body())


@router.post("/sync", responses=error_responses(401, 403, 503))
async def sync_now(runtime: RuntimeDep, _platform: PlatformDep) -> dict[str, Any]:
    """Read the bookings changed since the last sync now, instead of at the next one."""
    result = await runtime.bookings.sync()
    return {
        "source": runtime.bookings.name,
        "seen": result.seen,
        "applied": result.applied,
        "skipped": result.skipped,
        "ran_at": to_iso(runtime.clock.now_ms()),
    }
