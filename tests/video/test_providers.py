"""Video providers: TURN credentials of the built-in call, URL templates."""

from __future__ import annotations

import base64
import hashlib
import hmac

import jwt
import pytest

from sessionclock.core.session import BookingStatus, Role, Session, Status
from sessionclock.video import BuiltinProvider, UrlTemplateProvider, turn_credentials
from sessionclock.video.url_template import check_template
from tests.helpers import CLIENT, COMPANION, MINUTE_MS, T0_MS

SESSION = Session(
    id="b-1042",
    client_id=CLIENT,
    companion_id=COMPANION,
    starts_at_ms=T0_MS,
    ends_at_ms=T0_MS + 30 * MINUTE_MS,
    lobby_lead_s=300,
    booking_status=BookingStatus.CONFIRMED,
    status=Status.READY,
)
SECRET = "s3cret-for-turn"
JWT_SECRET = "jitsi-app-secret-" + "j" * 32


def test_turn_credentials_follow_coturn_rest_scheme() -> None:
    """The user name is expiry:user, the password base64 HMAC-SHA1 of it."""
    username, password = turn_credentials(SECRET, "u-7", 1_796_326_200)

    expected = hmac.new(SECRET.encode(), b"1796326200:u-7", hashlib.sha1).digest()
    assert username == "1796326200:u-7"
    assert password == base64.b64encode(expected).decode()


def test_builtin_credentials_expire_no_later_than_the_end() -> None:
    """A long TTL is cut at ends_at; a short one ends first."""
    long = BuiltinProvider(
        [{"urls": "stun:stun.example.org"}],
        turn_urls=["turn:turn.example.org:3478"],
        turn_secret=SECRET,
        turn_ttl_s=86_400,
    )
    short = BuiltinProvider(
        turn_urls=["turn:turn.example.org:3478"], turn_secret=SECRET, turn_ttl_s=60
    )

    late = long.access(SESSION, Role.CLIENT, now_ms=T0_MS)
    early = short.access(SESSION, Role.COMPANION, now_ms=T0_MS)

    assert late.expires_at_ms == SESSION.ends_at_ms
    assert late.ice_servers[0] == {"urls": "stun:stun.example.org"}
    assert late.ice_servers[1]["username"] == f"{SESSION.ends_at_ms // 1000}:{CLIENT}"
    assert early.expires_at_ms == T0_MS + 60_000
    assert early.ice_servers[0]["username"].endswith(f":{COMPANION}")


def test_builtin_without_turn_secret_gives_only_the_configured_servers() -> None:
    """No secret, no credentials: the ICE servers are handed out as configured."""
    provider = BuiltinProvider([{"urls": ["stun:a.example.org", "stun:b.example"]}])

    access = provider.access(SESSION, Role.CLIENT, now_ms=T0_MS)

    assert access.provider == "builtin"
    assert access.ice_servers == [{"urls": ["stun:a.example.org", "stun:b.example"]}]


def test_url_template_builds_a_room_only_the_secret_knows() -> None:
    """The room name is stable for a session, differs between sessions and
    between secrets, and every field is URL-encoded."""
    provider = UrlTemplateProvider(
        "https://meet.example.org/{room}?u={user_id}&r={role}", room_secret="k1"
    )
    other = UrlTemplateProvider("https://x.example/{room}", room_secret="k2")

    access = provider.access(SESSION, Role.CLIENT, now_ms=T0_MS)

    room = provider.room(SESSION.id)
    assert room.startswith("sc-")
    assert room == provider.room(SESSION.id) != provider.room("b-1043")
    assert room != other.room(SESSION.id)
    assert access.url == f"https://meet.example.org/{room}?u={CLIENT}&r=client"
    assert access.expires_at_ms == SESSION.ends_at_ms


def test_url_template_jwt_is_valid_from_start_to_end_only() -> None:
    """The Jitsi token's nbf and exp are the session's start and end."""
    provider = UrlTemplateProvider(
        "https://meet.example.org/{room}?jwt={jwt}",
        room_secret="k1",
        jwt_secret=JWT_SECRET,
        jwt_app_id="my-app",
        jwt_subject="meet.example.org",
    )

    token = provider.token(SESSION, Role.COMPANION)
    claims = jwt.decode(
        token,
        JWT_SECRET,
        algorithms=["HS256"],
        audience="jitsi",
        options={"verify_nbf": False, "verify_exp": False},
    )

    assert claims["nbf"] == SESSION.starts_at_ms // 1000
    assert claims["exp"] == SESSION.ends_at_ms // 1000
    assert claims["room"] == provider.room(SESSION.id)
    assert claims["iss"] == "my-app"
    assert claims["sub"] == "meet.example.org"
    assert claims["context"]["user"]["id"] == COMPANION
    assert token in (provider.access(SESSION, Role.COMPANION, T0_MS).url or "")


@pytest.mark.parametrize(
    "template",
    ["https://meet.example.org/{nope}", "ftp://meet.example.org/{room}", "https://{"],
)
def test_check_template_refuses_unknown_fields_and_schemes(template: str) -> None:
    """A template with an unknown field, a bad brace or another scheme is refused."""
    with pytest.raises(ValueError, match="expected"):
        check_template(template)
