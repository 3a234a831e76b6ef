"""The built-in call: browser WebRTC between the two participants.

Media travels between the browsers (or through a TURN relay); sessionclock only
relays the signalling on the session's socket and hands out ICE servers. With a
TURN secret, each participant gets its own credentials in the time-limited scheme
that coturn's `use-auth-secret` checks: the user name is the expiry (Unix
seconds) and the user, the password the base64 HMAC-SHA1 of that name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from sessionclock.core.session import Role, Session
from sessionclock.video.base import CallAccess


def turn_credentials(secret: str, user_id: str, expires_at_s: int) -> tuple[str, str]:
    """coturn's REST credentials for `user_id`, valid until `expires_at_s`."""
    username = f"{expires_at_s}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


class BuiltinProvider:
    """ICE servers from the settings, TURN credentials that end with the session."""

    name = "builtin"

    def __init__(
        self,
        ice_servers: Sequence[dict[str, Any]] = (),
        *,
        turn_urls: Sequence[str] = (),
        turn_secret: str | None = None,
        turn_ttl_s: int = 3600,
    ) -> None:
        self._ice_servers = [dict(server) for server in ice_servers]
        self._turn_urls = list(turn_urls)
        self._turn_secret = turn_secret
        self._turn_ttl_s = turn_ttl_s

    def access(self, session: Session, role: Role, now_ms: int) -> CallAccess:
        # The credentials, like the call, last no later than the booked end.
        expires_at_ms = min(now_ms + self._turn_ttl_s * 1000, session.ends_at_ms)
        servers = [dict(server) for server in self._ice_servers]
        if self._turn_secret and self._turn_urls:
            username, credential = turn_credentials(
                self._turn_secret, session.user_id(role), expires_at_ms // 1000
            )
            servers.append(
                {
                    "urls": list(self._turn_urls),
                    "username": username,
                    "credential": credential,
                }
            )
        return CallAccess(self.name, expires_at_ms, ice_servers=servers)
