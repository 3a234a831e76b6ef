"""Cleanup: its status, a manual run, and the cron endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from sessionclock.core.clock import to_iso
from sessionclock.http.deps import HeaderBearerDep, PlatformDep, RuntimeDep
from sessionclock.http.schemas import (
    CleanupOut,
    CleanupRunOut,
    CleanupStatusOut,
    error_responses,
)
from sessionclock.runtime import Runtime

router = APIRouter(prefix="/api", tags=["cleanup"])

_ERRORS = error_responses(401, 403, 404, 429)


@router.get("/sessions/cleanup", response_model=CleanupStatusOut, responses=_ERRORS)
async def cleanup_status(
    runtime: RuntimeDep, _platform: PlatformDep
) -> CleanupStatusOut:
    """The last cleanup run (any node), this node's next run, sessions by status."""
    last = await runtime.repository.last_cleanup()
    next_ms = runtime.scheduler.next_cleanup_at_ms
    return CleanupStatusOut(
        last_run=None
        if last is None
        else CleanupRunOut(
            expired=last.expired,
            purged=last.purged,
            ran_at=to_iso(last.ran_at_ms),
            trigger=last.trigger,
            node=last.node,
            duration_ms=last.duration_ms,
        ),
        next_run=None if next_ms is None else to_iso(next_ms),
        sessions=await runtime.repository.count_by_status(),
        retention_s=runtime.settings.retention_s,
        server_time=to_iso(runtime.clock.now_ms()),
        outbox=await runtime.outbox.repository.counts(),
        bookings=runtime.bookings.report(),
    )


@router.post("/sessions/cleanup", response_model=CleanupOut, responses=_ERRORS)
async def run_cleanup(runtime: RuntimeDep, _platform: PlatformDep) -> CleanupOut:
    """Run cleanup now: expire overdue sessions, purge old runtime records."""
    return await _run(runtime, "manual")


@router.get("/cron/cleanup-sessions", response_model=CleanupOut, responses=_ERRORS)
async def cron_cleanup_get(runtime: RuntimeDep, bearer: HeaderBearerDep) -> CleanupOut:
    """Run cleanup now, for a cron job holding `CRON_SECRET_TOKEN`."""
    runtime.authenticator.authenticate_cron(bearer)
    return await _run(runtime, "cron")


@router.post("/cron/cleanup-sessions", response_model=CleanupOut, responses=_ERRORS)
async def cron_cleanup_post(runtime: RuntimeDep, bearer: HeaderBearerDep) -> CleanupOut:
    """Run cleanup now, for a cron job holding `CRON_SECRET_TOKEN`."""
    runtime.authenticator.authenticate_cron(bearer)
    return await _run(runtime, "cron")


async def _run(runtime: Runtime, trigger: str) -> CleanupOut:
    await runtime.cleanup_limiter.hit(f"cleanup:{trigger}", "cleanup runs")
    run = await runtime.service.cleanup(trigger)
    return CleanupOut(
        expired=run.expired, purged=run.purged, ran_at=to_iso(run.ran_at_ms)
    )
