"""Request and response bodies of the HTTP API, as the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from sessionclock.constants import (
    MAX_DURATION_S,
    MAX_LOBBY_LEAD_S,
    SESSION_ID_PATTERN,
    TOKEN_DEFAULT_TTL_S,
    TOKEN_MAX_TTL_S,
    USER_ID_PATTERN,
)

SessionId = Annotated[str, Field(pattern=SESSION_ID_PATTERN, examples=["b-1042"])]
UserId = Annotated[str, Field(pattern=USER_ID_PATTERN, examples=["u-7"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BookingIn(_Strict):
    """A booking: who, when, and its status. Give `duration_s` or `ends_at`."""

    client_id: UserId
    companion_id: UserId
    starts_at: AwareDatetime = Field(examples=["2026-12-03T19:00:00.000Z"])
    duration_s: Annotated[StrictInt, Field(ge=1, le=MAX_DURATION_S)] | None = None
    ends_at: AwareDatetime | None = None
    booking_status: Literal["pending", "confirmed", "cancelled"] = "confirmed"
    lobby_lead_s: Annotated[StrictInt, Field(ge=0, le=MAX_LOBBY_LEAD_S)] | None = None

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.duration_s is None) == (self.ends_at is None):
            raise ValueError("expected exactly one of duration_s and ends_at")
        if self.ends_at is not None:
            length_s = (self.ends_at - self.starts_at).total_seconds()
            if length_s <= 0:
                raise ValueError("expected ends_at after starts_at")
            if length_s > MAX_DURATION_S:
                raise ValueError(f"expected a session of at most {MAX_DURATION_S} s")
        if self.client_id == self.companion_id:
            raise ValueError("expected a client and a companion who are two users")
        return self

    def end(self) -> datetime:
        if self.ends_at is not None:
            return self.ends_at
        return self.starts_at + timedelta(seconds=self.duration_s or 0)


class SessionCreate(BookingIn):
    """A new session; without an `id` the service makes one."""

    id: SessionId | None = None


class ReadyIn(_Strict):
    ready: StrictBool = Field(description="true: I am ready; false: not ready yet")


class TokenIn(_Strict):
    user_id: UserId
    ttl_s: Annotated[StrictInt, Field(ge=1, le=TOKEN_MAX_TTL_S)] = TOKEN_DEFAULT_TTL_S


class TokenOut(BaseModel):
    token: str
    expires_at: str


class TimeOut(BaseModel):
    server_time: str = Field(examples=["2026-12-03T18:56:03.020Z"])
    server_time_ms: int


class ParticipantOut(BaseModel):
    user_id: str
    ready: bool
    ready_at: str | None
    online: bool = Field(
        default=False,
        description="holds a live WebSocket or event stream to the session now",
    )


class SnapshotOut(BaseModel):
    """The whole public state of one session at one version."""

    id: str
    status: Literal["scheduled", "waiting", "ready", "expired", "cancelled"]
    booking_status: Literal["pending", "confirmed", "cancelled"]
    starts_at: str
    ends_at: str
    lobby_opens_at: str
    lobby_lead_s: int
    participants: dict[Literal["client", "companion"], ParticipantOut]
    expired_reason: Literal["time_up", "no_show", "cancelled"] | None
    absent: list[Literal["client", "companion"]] = Field(
        description="after a no-show, the roles that never marked ready"
    )
    ended_at: str | None
    version: int
    server_time: str
    server_time_ms: int


class SessionListOut(BaseModel):
    sessions: list[SnapshotOut]
    server_time: str
    server_time_ms: int


class CleanupOut(BaseModel):
    expired: int
    purged: int
    ran_at: str


class CleanupRunOut(CleanupOut):
    trigger: str
    node: str
    duration_ms: int


class CleanupStatusOut(BaseModel):
    last_run: CleanupRunOut | None
    next_run: str | None
    sessions: dict[str, int]
    retention_s: int
    server_time: str
    outbox: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="outbox deliveries by target (webhook, booking_source) and status",
    )
    bookings: dict[str, Any] = Field(
        default_factory=dict, description="the booking source and its last sync"
    )


class CallOut(BaseModel):
    """What a participant's browser needs to join the session's call."""

    session_id: str
    role: Literal["client", "companion"]
    provider: Literal["builtin", "url"]
    polite: bool = Field(
        description="in the built-in call, the peer that yields when both offer "
        "at once (perfect negotiation): the client"
    )
    ice_servers: list[dict[str, Any]] = Field(
        description="RTCIceServer objects, with TURN credentials that expire no "
        "later than ends_at"
    )
    url: str | None = Field(description="the page to embed, for the url provider")
    expires_at: str
    ends_at: str
    server_time: str
    server_time_ms: int


class AttendanceOut(BaseModel):
    """The attendance ledger of one session's call."""

    session_id: str
    call_started_at: str | None = Field(
        description="when both participants were first in the call together"
    )
    call_ended_at: str | None
    participants: dict[Literal["client", "companion"], dict[str, Any]]
    events: list[dict[str, Any]]
    server_time: str


class ErrorOut(BaseModel):
    detail: str


class MeOut(BaseModel):
    user_id: str


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry for the errors a route can answer."""
    return {status: {"model": ErrorOut} for status in status_codes}
