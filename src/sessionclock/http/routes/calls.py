"""The call: how a participant joins it, and the ledger of who was there."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from sessionclock.core.attendance import ledger_json
from sessionclock.core.clock import to_iso
from sessionclock.core.session import Role
from sessionclock.http.deps import ParticipantDep, PlatformDep, RuntimeDep
from sessionclock.http.routes.sessions import SessionIdPath
from sessionclock.http.schemas import AttendanceOut, CallOut, error_responses

router = APIRouter(prefix="/api/sessions", tags=["call"])


@router.get(
    "/{session_id}/call",
    response_model=CallOut,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def get_call(
    session_id: SessionIdPath, runtime: RuntimeDep, participant: ParticipantDep
) -> JSONResponse:
    """How the caller joins the call: ICE servers, or the page of another provider.

    Only a participant, only while the session is `ready` and before `ends_at`
    (409 otherwise).
    """
    assert participant.user_id is not None
    session, role, access = await runtime.calls.access(session_id, participant.user_id)
    now_ms = runtime.clock.now_ms()
    body = {
        "session_id": session_id,
        "role": role.value,
        "provider": access.provider,
        "polite": role is Role.CLIENT,
        "ice_servers": access.ice_servers,
        "url": access.url,
        "expires_at": to_iso(access.expires_at_ms),
        "ends_at": to_iso(session.ends_at_ms),
        "server_time": to_iso(now_ms),
        "server_time_ms": now_ms,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.get(
    "/{session_id}/attendance",
    response_model=AttendanceOut,
    responses=error_responses(401, 403, 404, 422),
)
async def get_attendance(
    session_id: SessionIdPath, runtime: RuntimeDep, _platform: PlatformDep
) -> JSONResponse:
    """Who was in the call and when: joins, leaves, reconnects and media reports.

    Each participant's `present_s` counts the time any of its sockets was in the
    call, up to the session's end; `media_connected_s` the time its browser said
    the other's media was connected.
    """
    account = await runtime.calls.ledger(session_id)
    body = {**ledger_json(account), "server_time": to_iso(runtime.clock.now_ms())}
    return JSONResponse(body)
