"""What a participant asks about itself, tokens for participants, the server's time."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from sessionclock.core.clock import to_iso
from sessionclock.core.session import snapshot
from sessionclock.http.deps import ParticipantDep, PlatformDep, RuntimeDep
from sessionclock.http.schemas import (
    MeOut,
    SessionListOut,
    TimeOut,
    TokenIn,
    TokenOut,
    error_responses,
)

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api")

_ERRORS = error_responses(401, 403, 422)


@router.get(
    "/me/sessions", response_model=SessionListOut, responses=_ERRORS, tags=["me"]
)
async def my_sessions(
    runtime: RuntimeDep,
    participant: ParticipantDep,
    within_s: Annotated[
        int | None,
        Query(
            ge=0,
            le=366 * 86_400,
            description="keep sessions whose lobby opens within N s",
        ),
    ] = None,
) -> JSONResponse:
    """The caller's sessions that have not ended, soonest first."""
    assert participant.user_id is not None
    found = await runtime.service.sessions_of(participant.user_id, within_s)
    now_ms = runtime.clock.now_ms()
    return JSONResponse(
        {
            "sessions": [snapshot(session, now_ms) for session in found],
            "server_time": to_iso(now_ms),
            "server_time_ms": now_ms,
        }
    )


@router.get("/me", response_model=MeOut, responses=_ERRORS, tags=["me"])
async def me(participant: ParticipantDep) -> MeOut:
    """Who the caller's token names: what an embedded lobby needs to find its role."""
    assert participant.user_id is not None
    return MeOut(user_id=participant.user_id)


@router.post("/tokens", response_model=TokenOut, responses=_ERRORS, tags=["tokens"])
async def issue_token(
    body: TokenIn, runtime: RuntimeDep, _platform: PlatformDep
) -> TokenOut:
    """A signed participant token naming one user, valid for `ttl_s` seconds."""
    issued = runtime.issuer.issue(body.user_id, body.ttl_s)
    log.info("token.issued", user_id=body.user_id, ttl_s=body.ttl_s)
    return TokenOut(token=issued.token, expires_at=to_iso(issued.expires_at_ms))


@router.get("/time", response_model=TimeOut, tags=["time"])
async def server_time(runtime: RuntimeDep) -> JSONResponse:
    """The server's clock, for clients that estimate their offset from it."""
    now_ms = runtime.clock.now_ms()
    return JSONResponse(
        {"server_time": to_iso(now_ms), "server_time_ms": now_ms},
        headers={"Cache-Control": "no-store"},
    )
