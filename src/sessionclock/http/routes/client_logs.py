"""What browsers report: their errors, written to the server's structured log."""

from __future__ import annotations

from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sessionclock.constants import CLIENT_LOG_MAX_CHARS, SESSION_ID_PATTERN
from sessionclock.http.deps import RuntimeDep
from sessionclock.http.schemas import error_responses

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api", tags=["client logs"])


class ClientLogIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: Literal["error", "warning"] = "error"
    event: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]
    message: Annotated[str, Field(max_length=CLIENT_LOG_MAX_CHARS)] = ""
    page: Annotated[str, Field(pattern=r"^[a-z_]{1,32}$")] | None = None
    session_id: Annotated[str, Field(pattern=SESSION_ID_PATTERN)] | None = None


@router.post("/client-logs", status_code=204, responses=error_responses(422, 429))
async def client_log(
    body: ClientLogIn, request: Request, runtime: RuntimeDep
) -> Response:
    """Write a browser's error to the server's log as `client.<event>`.

    Anyone may report (an error can come before sign-in); each address is limited
    to a few reports a minute, and a report carries no credentials.
    """
    address = request.client.host if request.client else "unknown"
    await runtime.client_log_limiter.hit(f"client-logs:{address}", "client log reports")
    emit = log.error if body.level == "error" else log.warning
    emit(
        f"client.{body.event}",
        message=body.message,
        page=body.page,
        session_id=body.session_id,
        user_agent=request.headers.get("user-agent", "")[:200],
    )
    return Response(status_code=204)
