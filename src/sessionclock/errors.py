"""The one exception tree of sessionclock; adapters map it to HTTP and close codes."""

from __future__ import annotations


class SessionClockError(Exception):
    """Root of every error this package raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(SessionClockError):
    """The settings cannot run a server: a secret is missing, a value is wrong."""


class InvalidInput(SessionClockError):
    """A request's content is not what the contract expects."""

    def __init__(self, field: str, expected: str, got: object) -> None:
        super().__init__(f"{field}: expected {expected}, got {got!r}")
        self.field = field
        self.expected = expected
        self.got = got


class AuthError(SessionClockError):
    """Credentials are missing or wrong (HTTP 401)."""


class MissingCredentials(AuthError):
    def __init__(self, expected: str) -> None:
        super().__init__(f"missing credentials: expected {expected}")


class InvalidCredentials(AuthError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid credentials: {reason}")
        self.reason = reason


class Forbidden(SessionClockError):
    """The caller is known but may not do this (HTTP 403)."""

    def __init__(self, action: str, needs: str) -> None:
        super().__init__(f"{action} needs {needs}")
        self.action = action
        self.needs = needs


class SessionNotFound(SessionClockError):
    """No such session, or none that this caller takes part in (HTTP 404)."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r} for these credentials")
        self.session_id = session_id


class Conflict(SessionClockError):
    """The request is well formed but not possible in the session's status (409)."""


class LobbyNotOpen(Conflict):
    def __init__(self, session_id: str, lobby_opens_at: str) -> None:
        super().__init__(
            f"session {session_id!r}: the lobby opens at {lobby_opens_at}; "
            "ready marks are taken from then on"
        )
        self.session_id = session_id
        self.lobby_opens_at = lobby_opens_at


class SessionEnded(Conflict):
    def __init__(self, session_id: str, status: str) -> None:
        super().__init__(f"session {session_id!r} has ended (status '{status}')")
        self.session_id = session_id
        self.status = status


class CallAlreadyOpen(Conflict):
    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id!r}: both participants are ready and the call "
            "is open until ends_at; a ready mark cannot be taken back now"
        )
        self.session_id = session_id


class CallNotOpen(Conflict):
    """The call is open only while the session is `ready`, until `ends_at`."""

    def __init__(self, session_id: str, status: str) -> None:
        super().__init__(
            f"session {session_id!r} is '{status}': the call opens when both "
            "participants are ready and closes at ends_at"
        )
        self.session_id = session_id
        self.status = status


class NotInCall(Conflict):
    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id!r}: expected a call join on this socket before "
            "signalling"
        )
        self.session_id = session_id


class LobbyTooFar(Conflict):
    def __init__(self, session_id: str, max_lead_s: int) -> None:
        super().__init__(
            f"session {session_id!r} starts more than {max_lead_s} s from now; "
            "a lobby opens at most that long before the start"
        )
        self.session_id = session_id


class SessionIdTaken(Conflict):
    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id!r} exists with other values; expected the same "
            "body again (a no-op) or PUT to update it"
        )
        self.session_id = session_id


class ContentionError(SessionClockError):
    """A change lost its compare-and-set race too many times (HTTP 503)."""

    def __init__(self, session_id: str, attempts: int) -> None:
        super().__init__(
            f"session {session_id!r} changed {attempts} times while this request "
            "tried to change it; try again"
        )
        self.session_id = session_id


class RateLimited(SessionClockError):
    """Too many requests for one limit (HTTP 429 with Retry-After)."""

    def __init__(self, what: str, retry_after_s: int) -> None:
        super().__init__(f"too many {what}; try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class EndpointDisabled(SessionClockError):
    """An endpoint that the settings turn off (HTTP 404)."""

    def __init__(self, endpoint: str, setting: str) -> None:
        super().__init__(
            f"{endpoint} is disabled on this server; set {setting} to enable it"
        )
        self.endpoint = endpoint
        self.setting = setting


class DeliveryFailed(SessionClockError):
    """An outbox message did not reach its receiver this time; it is retried."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"delivery to the {target} failed: {reason}")
        self.target = target
        self.reason = reason


class BookingSourceUnavailable(SessionClockError):
    """The booking source did not answer, or answered with something unusable."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"booking source {source!r}: {reason}")
        self.source = source
        self.reason = reason
