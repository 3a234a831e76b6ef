"""Sessions: create, update, read, mark ready, cancel."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from sessionclock.constants import MAX_BOOKING_DISTANCE_S, SESSION_ID_PATTERN
from sessionclock.core.clock import to_epoch_ms
from sessionclock.core.session import Booking, BookingStatus, Session, snapshot
from sessionclock.credentials import Principal
from sessionclock.errors import InvalidInput
from sessionclock.http.deps import ParticipantDep, PlatformDep, PrincipalDep, RuntimeDep
from sessionclock.http.schemas import (
    BookingIn,
    ReadyIn,
    SessionCreate,
    SnapshotOut,
    error_responses,
)
from sessionclock.runtime import Runtime

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/sessions", tags=["sessions"])

_READY = "/{session_id}/ready"
READY_ROUTE = router.prefix + _READY
"""The ready mark's route template, which `http.hot_path` serves too."""

SessionIdPath = Annotated[
    str, Path(pattern=SESSION_ID_PATTERN, description="session id")
]

_ERRORS = error_responses(401, 403, 404, 409, 422, 429)


@router.post("", response_model=SnapshotOut, status_code=201, responses=_ERRORS)
async def create_session(
    body: SessionCreate, runtime: RuntimeDep, _platform: PlatformDep
) -> JSONResponse:
    """Create a session. Posting the same id and body again changes nothing (200)."""
    booking = _booking(body, runtime)
    session, created = await runtime.service.create(body.id, booking)
    return await snapshot_response(runtime, session, 201 if created else 200)


@router.put("/{session_id}", response_model=SnapshotOut, responses=_ERRORS)
async def put_session(
    session_id: SessionIdPath,
    body: BookingIn,
    runtime: RuntimeDep,
    _platform: PlatformDep,
) -> JSONResponse:
    """Create a session or update it from its booking (used by booking sync)."""
    booking = _booking(body, runtime)
    session, created = await runtime.service.upsert(session_id, booking)
    return await snapshot_response(runtime, session, 201 if created else 200)


@router.get("/{session_id}", response_model=SnapshotOut, responses=_ERRORS)
async def get_session(
    session_id: SessionIdPath, runtime: RuntimeDep, principal: PrincipalDep
) -> JSONResponse:
    """The session's snapshot, for its participants and the platform."""
    return await snapshot_response(
        runtime, await _visible(runtime, session_id, principal)
    )


@router.get(_READY, response_model=SnapshotOut, responses=_ERRORS)
async def get_ready_state(
    session_id: SessionIdPath, runtime: RuntimeDep, principal: PrincipalDep
) -> JSONResponse:
    """The session's snapshot: the state endpoint that polling clients call."""
    session = await _visible(runtime, session_id, principal)
    log.debug(
        "session.synced",
        session_id=session.id,
        user_id=principal.user_id,
        status=session.status.value,
        version=session.version,
    )
    return await snapshot_response(runtime, session)


@router.post(_READY, response_model=SnapshotOut, responses=_ERRORS)
async def mark_ready(
    session_id: SessionIdPath,
    body: ReadyIn,
    runtime: RuntimeDep,
    participant: ParticipantDep,
) -> JSONResponse:
    """Mark the caller ready (or not ready yet) and return the new snapshot."""
    assert participant.user_id is not None
    session = await runtime.service.mark_ready(
        session_id, participant.user_id, body.ready
    )
    return await snapshot_response(runtime, session)


@router.post("/{session_id}/cancel", response_model=SnapshotOut, responses=_ERRORS)
async def cancel_session(
    session_id: SessionIdPath, runtime: RuntimeDep, _platform: PlatformDep
) -> JSONResponse:
    """Cancel the session; cancelling it again changes nothing."""
    return await snapshot_response(runtime, await runtime.service.cancel(session_id))


async def _visible(runtime: Runtime, session_id: str, principal: Principal) -> Session:
    if principal.is_platform:
        return await runtime.service.get(session_id)
    assert principal.user_id is not None
    session, _role = await runtime.service.get_for(session_id, principal.user_id)
    return session


def _booking(body: BookingIn, runtime: Runtime) -> Booking:
    starts_at_ms = to_epoch_ms(body.starts_at)
    distance_s = abs(starts_at_ms - runtime.clock.now_ms()) // 1000
    if distance_s > MAX_BOOKING_DISTANCE_S:
        raise InvalidInput(
            "starts_at",
            f"a time within {MAX_BOOKING_DISTANCE_S // 86_400} days of now",
            body.starts_at.isoformat(),
        )
    lobby_lead_s = body.lobby_lead_s
    if lobby_lead_s is None:
        lobby_lead_s = runtime.settings.lobby_lead_s
    return Booking(
        client_id=body.client_id,
        companion_id=body.companion_id,
        starts_at_ms=starts_at_ms,
        ends_at_ms=to_epoch_ms(body.end()),
        lobby_lead_s=lobby_lead_s,
        booking_status=BookingStatus(body.booking_status),
    )


async def snapshot_response(
    runtime: Runtime, session: Session, status_code: int = 200
) -> JSONResponse:
    """The session's snapshot as the answer, with who is online right now."""
    # The hub knows who is online for sessions it holds connections of.
    online = runtime.hub.online(session.id) or await runtime.presence.online(session.id)
    return JSONResponse(
        snapshot(session, runtime.clock.now_ms(), online), status_code=status_code
    )
