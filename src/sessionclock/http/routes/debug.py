"""Debug controls for development: they exist only when SESSIONCLOCK_ENV=development.

In production the router is not mounted, so every path here answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from sessionclock.constants import (
    MAX_DURATION_S,
    MAX_LOBBY_LEAD_S,
    SESSION_ID_PATTERN,
)
from sessionclock.core.clock import to_iso
from sessionclock.core.session import Booking, BookingStatus, snapshot
from sessionclock.http.deps import RuntimeDep
from sessionclock.http.schemas import error_responses

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/debug", tags=["debug (development only)"])

TEST_CLIENT = "test-client"
TEST_COMPANION = "test-companion"
_LINK_TTL_S = 86_400


class TestSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_in_s: int = Field(default=120, ge=0, le=7 * 86_400)
    duration_s: int = Field(default=600, ge=1, le=MAX_DURATION_S)
    lobby_lead_s: int = Field(default=60, ge=0, le=MAX_LOBBY_LEAD_S)
    booking_status: BookingStatus = BookingStatus.PENDING


@router.get("/state")
async def state(runtime: RuntimeDep) -> dict[str, Any]:
    """Sessions by status, sockets per node, the next deadlines, the bus."""
    by_status = await runtime.repository.count_by_status()
    # This node's line is live; the others are as of their last report.
    here = runtime.hub.report()
    nodes = {report.node: report for report in await runtime.presence.nodes()}
    nodes[here.node] = here
    return {
        "node": runtime.settings.node,
        "sessions_by_status": by_status,
        "nodes": [
            {
                "node": report.node,
                "connections": report.connections,
                "sessions": report.sessions,
                "reported_at": to_iso(report.reported_at_ms),
            }
            for report in sorted(nodes.values(), key=lambda report: report.node)
        ],
        "deadlines": [
            {
                "session_id": deadline.session_id,
                "kind": deadline.kind.value,
                "at": to_iso(deadline.at_ms),
                "remaining_s": deadline.remaining_s,
            }
            for deadline in runtime.scheduler.upcoming(10)
        ],
        "bus": {
            "kind": "redis" if runtime.redis is not None else "in-process",
            "connected": runtime.bus.connected,
        },
        "bookings": runtime.bookings.report(),
        "outbox": {
            "counts": await runtime.outbox.repository.counts(),
            "undelivered": [
                {
                    "event_id": delivery.event_id,
                    "target": delivery.target,
                    "type": delivery.type,
                    "session_id": delivery.session_id,
                    "status": delivery.status.value,
                    "attempts": delivery.attempts,
                    "next_attempt_at": to_iso(delivery.next_attempt_at_ms),
                    "last_error": delivery.last_error,
                }
                for delivery in await runtime.outbox.repository.undelivered(10)
            ],
        },
        "server_time": to_iso(runtime.clock.now_ms()),
    }


@router.post("/sessions", status_code=201, responses=error_responses(422))
async def create_test_session(
    body: TestSessionIn, runtime: RuntimeDep
) -> dict[str, Any]:
    """A session between two test users that starts soon, with their sign-in links."""
    now_ms = runtime.clock.now_ms()
    starts_at_ms = now_ms + body.starts_in_s * 1000
    booking = Booking(
        client_id=TEST_CLIENT,
        companion_id=TEST_COMPANION,
        starts_at_ms=starts_at_ms,
        ends_at_ms=starts_at_ms + body.duration_s * 1000,
        lobby_lead_s=body.lobby_lead_s,
        booking_status=body.booking_status,
    )
    session, _created = await runtime.service.create(None, booking)
    links = {
        role: f"/sessions/{session.id}?access_token="
        + quote(runtime.issuer.issue(user_id, _LINK_TTL_S).token)
        for role, user_id in (("client", TEST_CLIENT), ("companion", TEST_COMPANION))
    }
    log.info("debug.session_created", session_id=session.id)
    return {"session": snapshot(session, now_ms), "links": links}


@router.post(
    "/sessions/{session_id}/open-lobby", responses=error_responses(404, 409, 422)
)
async def open_lobby(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Open a session's lobby now: both participants' pages open their dialog."""
    session = await runtime.service.open_lobby_now(session_id)
    log.info("debug.lobby_forced", session_id=session_id, status=session.status)
    return snapshot(session, runtime.clock.now_ms())


@router.post("/cleanup", responses=error_responses(429))
async def run_cleanup(runtime: RuntimeDep) -> dict[str, Any]:
    """Run cleanup now, as the cron endpoint would, and show its result."""
    await runtime.cleanup_limiter.hit("cleanup:debug", "cleanup runs")
    run = await runtime.service.cleanup("debug")
    return {
        "expired": run.expired,
        "purged": run.purged,
        "ran_at": to_iso(run.ran_at_ms),
    }
