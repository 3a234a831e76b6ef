"""A platform's own video service, reached by a URL built from a template.

The template's fields are `{room}` (a name derived from the session id and a
secret, so that nobody guesses another session's room), `{session_id}`,
`{user_id}`, `{role}` and `{jwt}`. With a JWT secret, `{jwt}` is a token in the
form Jitsi Meet's token authentication reads: `nbf` the session's start, `exp`
its end, `room` the room, `context.user` the participant.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

import jwt

from sessionclock.core.session import Role, Session
from sessionclock.video.base import CallAccess

_FIELDS = ("room", "session_id", "user_id", "role", "jwt")


class UrlTemplateProvider:
    """Builds each participant's call URL; the server still ends the session."""

    name = "url"

    def __init__(
        self,
        template: str,
        *,
        room_secret: str,
        jwt_secret: str | None = None,
        jwt_app_id: str = "sessionclock",
        jwt_audience: str = "jitsi",
        jwt_subject: str = "*",
    ) -> None:
        self._template = template
        self._room_secret = room_secret
        self._jwt_secret = jwt_secret
        self._jwt_app_id = jwt_app_id
        self._jwt_audience = jwt_audience
        self._jwt_subject = jwt_subject

    def room(self, session_id: str) -> str:
        digest = hmac.new(
            self._room_secret.encode(), f"room:{session_id}".encode(), hashlib.sha256
        ).hexdigest()
        return f"sc-{digest[:24]}"

    def token(self, session: Session, role: Role) -> str:
        """A JWT that lets this participant into the room from start to end only."""
        if self._jwt_secret is None:
            return ""
        user_id = session.user_id(role)
        claims = {
            "iss": self._jwt_app_id,
            "aud": self._jwt_audience,
            "sub": self._jwt_subject,
            "room": self.room(session.id),
            "nbf": session.starts_at_ms // 1000,
            "exp": session.ends_at_ms // 1000,
            "context": {"user": {"id": user_id, "name": user_id}, "role": role.value},
        }
        return jwt.encode(claims, self._jwt_secret, algorithm="HS256")

    def access(self, session: Session, role: Role, now_ms: int) -> CallAccess:
        values = {
            "room": self.room(session.id),
            "session_id": session.id,
            "user_id": session.user_id(role),
            "role": role.value,
            "jwt": self.token(session, role),
        }
        url = self._template.format_map(
            {k: quote(v, safe="") for k, v in values.items()}
        )
        return CallAccess(self.name, session.ends_at_ms, url=url)


def check_template(template: str) -> None:
    """Raise ValueError unless the template uses only the known fields."""
    try:
        template.format_map(dict.fromkeys(_FIELDS, "x"))
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(
            f"expected a URL template with fields among {', '.join(_FIELDS)}; "
            f"got {template!r} ({error})"
        ) from None
    if not template.startswith(("https://", "http://")):
        raise ValueError(f"expected an http(s) URL template, got {template!r}")
