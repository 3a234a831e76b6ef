"""What every video provider offers: access to one session's call for one role."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sessionclock.core.session import Role, Session


@dataclass(frozen=True, slots=True)
class CallAccess:
    """How one participant joins the call, valid until `expires_at_ms`.

    `builtin` calls carry `ice_servers` for the browser's RTCPeerConnection and
    signal over the session's socket; `url` calls carry the page to embed.
    """

    provider: str
    expires_at_ms: int
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    url: str | None = None


class VideoProvider(Protocol):
    """Gives a participant of a `ready` session what its browser needs."""

    @property
    def name(self) -> str: ...

    def access(self, session: Session, role: Role, now_ms: int) -> CallAccess: ...
