"""Credentials: the platform key, participant tokens (header, query) and expiry."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from sessionclock import credentials
from sessionclock.core.clock import ManualClock, to_epoch_ms, to_iso
from sessionclock.credentials import TokenIssuer, VerifiedToken
from sessionclock.errors import InvalidCredentials
from tests.conftest import Api
from tests.helpers import CLIENT, COMPANION, MINUTE_MS, STRANGER, T0_MS, booking

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def create(api: Api, session_id: str, **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/sessions", json=booking(id=session_id, **extra), headers=api.platform
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def issue(api: Api, user_id: str, ttl_s: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"user_id": user_id}
    if ttl_s is not None:
        body["ttl_s"] = ttl_s
    return await api.client.post("/api/tokens", json=body, headers=api.platform)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_platform_key_reads_and_cancels_any_session(api: Api) -> None:
    """The platform key reads every session and may cancel it."""
    await create(api, "b-1")

    read = await api.client.get("/api/sessions/b-1", headers=api.platform)
    state = await api.client.get("/api/sessions/b-1/ready", headers=api.platform)
    cancelled = await api.client.post("/api/sessions/b-1/cancel", headers=api.platform)

    assert read.status_code == 200, read.text
    assert read.json()["participants"]["client"]["user_id"] == CLIENT
    assert state.status_code == 200
    assert state.json()["id"] == "b-1"
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"


async def test_participant_token_in_header_reads_own_session(api: Api) -> None:
    """A participant token as `Authorization: Bearer` reads the caller's session."""
    created = await create(api, "b-1")

    for user in (CLIENT, COMPANION):
        response = await api.client.get("/api/sessions/b-1", headers=api.as_user(user))
        assert response.status_code == 200, response.text
        assert response.json()["version"] == created["version"]


async def test_participant_token_in_query_reads_and_marks(api: Api) -> None:
    """A token in `?access_token=` works where a browser cannot set headers."""
    await create(api, "b-1")
    api.clock.advance(6 * MINUTE_MS)
    token = api.as_user(COMPANION)["Authorization"].removeprefix("Bearer ")

    read = await api.client.get(
        "/api/sessions/b-1/ready", params={"access_token": token}
    )
    marked = await api.client.post(
        "/api/sessions/b-1/ready", json={"ready": True}, params={"access_token": token}
    )

    assert read.status_code == 200, read.text
    assert marked.status_code == 200, marked.text
    participants = marked.json()["participants"]
    assert participants["companion"]["ready"] is True
    assert participants["client"]["ready"] is False


async def test_platform_key_in_query_is_unauthorized(api: Api) -> None:
    """The platform key is a header credential; in `?access_token=` it opens nothing."""
    await create(api, "b-1")
    key = api.platform["Authorization"].removeprefix("Bearer ")

    read = await api.client.get("/api/sessions/b-1", params={"access_token": key})
    cancel = await api.client.post(
        "/api/sessions/b-1/cancel", params={"access_token": key}
    )

    assert read.status_code == 401, read.text
    assert cancel.status_code == 401, cancel.text
    assert CLIENT not in read.text
    stored = await api.client.get("/api/sessions/b-1", headers=api.platform)
    assert stored.json()["status"] == "scheduled"


async def test_issue_token_usable_for_that_user_only(api: Api) -> None:
    """A token from POST /api/tokens opens the user's sessions and no one else's."""
    await create(api, "b-mine")
    await create(api, "b-theirs", client_id=STRANGER)
    api.clock.advance(6 * MINUTE_MS)

    issued = await issue(api, CLIENT, ttl_s=3600)
    assert issued.status_code in (200, 201), issued.text
    headers = bearer(issued.json()["token"])

    mine = await api.client.get("/api/sessions/b-mine", headers=headers)
    theirs = await api.client.get("/api/sessions/b-theirs", headers=headers)
    mark_theirs = await api.client.post(
        "/api/sessions/b-theirs/ready", json={"ready": True}, headers=headers
    )
    listed = await api.client.get("/api/me/sessions", headers=headers)
    as_platform = await api.client.post(
        "/api/sessions", json=booking(id="b-new"), headers=headers
    )

    assert mine.status_code == 200, mine.text
    assert theirs.status_code == 404
    assert mark_theirs.status_code == 404
    assert STRANGER not in theirs.text
    assert [s["id"] for s in listed.json()["sessions"]] == ["b-mine"]
    assert as_platform.status_code == 403
    untouched = await api.client.get("/api/sessions/b-theirs", headers=api.platform)
    assert untouched.json()["participants"]["companion"]["ready"] is False


async def test_issue_token_expires_at_in_contract_format(api: Api) -> None:
    """`expires_at` is UTC ISO 8601 with milliseconds and `Z`, ttl_s after now."""
    issued = await issue(api, CLIENT, ttl_s=600)

    assert issued.status_code in (200, 201), issued.text
    body = issued.json()
    assert ISO_MS_Z.match(body["expires_at"]), body["expires_at"]
    assert body["expires_at"] == to_iso(T0_MS + 600_000)
    assert isinstance(body["token"], str)
    assert body["token"]


async def test_issue_token_without_ttl_expires_later(api: Api) -> None:
    """Without `ttl_s` the token still comes with a future `expires_at`."""
    issued = await issue(api, CLIENT)

    assert issued.status_code in (200, 201), issued.text
    expires_at = issued.json()["expires_at"]
    assert ISO_MS_Z.match(expires_at), expires_at
    assert expires_at > to_iso(T0_MS)


async def test_issue_token_for_any_valid_user_id(api: Api) -> None:
    """A token may name a user who has no session yet; it then lists nothing."""
    issued = await issue(api, "u.someone@example:42", ttl_s=60)

    assert issued.status_code in (200, 201), issued.text
    listed = await api.client.get(
        "/api/me/sessions", headers=bearer(issued.json()["token"])
    )
    assert listed.status_code == 200
    assert listed.json()["sessions"] == []


async def test_token_expiry_honoured_on_manual_clock(api: Api) -> None:
    """A token works until its ttl has passed on the server's clock, then is a 401."""
    await create(api, "b-1")
    issued = await issue(api, CLIENT, ttl_s=60)
    token = issued.json()["token"]

    api.clock.advance(60_000 - 1)
    still = await api.client.get("/api/sessions/b-1", headers=bearer(token))
    api.clock.advance(1)
    expired = await api.client.get("/api/sessions/b-1", headers=bearer(token))
    in_query = await api.client.get("/api/sessions/b-1", params={"access_token": token})

    assert still.status_code == 200, still.text
    for response in (expired, in_query):
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]
        assert CLIENT not in response.text


async def test_token_expires_at_is_when_it_stops_working(api: Api) -> None:
    """Off a whole second, a token works until its `expires_at` and not from then on."""
    await create(api, "b-1")
    api.clock.advance(1_234)
    issued = await issue(api, CLIENT, ttl_s=60)
    token = issued.json()["token"]
    expires_at = issued.json()["expires_at"]
    assert ISO_MS_Z.match(expires_at), expires_at

    expires_at_ms = to_epoch_ms(datetime.fromisoformat(expires_at))
    api.clock.advance(expires_at_ms - 1 - api.clock.now_ms())
    before_expiry = await api.client.get("/api/sessions/b-1", headers=bearer(token))
    api.clock.advance(1)
    at_expiry = await api.client.get("/api/sessions/b-1", headers=bearer(token))

    assert to_iso(api.clock.now_ms()) == expires_at
    assert before_expiry.status_code == 200, before_expiry.text
    assert at_expiry.status_code == 401


async def test_expired_token_new_one_works(api: Api) -> None:
    """After a token expires, a fresh one from the platform works again."""
    await create(api, "b-1")
    old = (await issue(api, CLIENT, ttl_s=60)).json()["token"]
    api.clock.advance(2 * MINUTE_MS)

    fresh = (await issue(api, CLIENT, ttl_s=60)).json()["token"]

    refused = await api.client.get("/api/sessions/b-1", headers=bearer(old))
    accepted = await api.client.get("/api/sessions/b-1", headers=bearer(fresh))
    assert refused.status_code == 401
    assert accepted.status_code == 200, accepted.text


async def test_participant_marks_only_itself(api: Api) -> None:
    """A ready mark changes the caller's role only, stamped with the server's time."""
    await create(api, "b-1")
    api.clock.advance(6 * MINUTE_MS)
    now = to_iso(api.clock.now_ms())

    client = await api.client.post(
        "/api/sessions/b-1/ready", json={"ready": True}, headers=api.as_user(CLIENT)
    )

    participants = client.json()["participants"]
    assert participants["client"] == {
        "user_id": CLIENT,
        "ready": True,
        "ready_at": now,
        "online": False,
    }
    assert participants["companion"] == {
        "user_id": COMPANION,
        "ready": False,
        "ready_at": None,
        "online": False,
    }

    api.clock.advance(1_000)
    companion = await api.client.post(
        "/api/sessions/b-1/ready",
        json={"ready": False},
        headers=api.as_user(COMPANION),
    )
    after = companion.json()["participants"]
    assert after["client"] == participants["client"]
    assert after["companion"]["ready"] is False


async def test_participant_unmark_leaves_other_mark(api: Api) -> None:
    """A participant saying it is not ready never clears the other's ready mark."""
    await create(api, "b-1")
    api.clock.advance(6 * MINUTE_MS)
    companion = await api.client.post(
        "/api/sessions/b-1/ready", json={"ready": True}, headers=api.as_user(COMPANION)
    )

    client = await api.client.post(
        "/api/sessions/b-1/ready", json={"ready": False}, headers=api.as_user(CLIENT)
    )

    assert client.status_code == 200, client.text
    participants = client.json()["participants"]
    assert participants["companion"] == companion.json()["participants"]["companion"]
    assert participants["companion"]["ready"] is True
    assert participants["client"]["ready"] is False


@pytest.mark.parametrize("ready", [True, False])
async def test_participant_marks_same_state_twice_is_noop(
    api: Api, ready: bool
) -> None:
    """Repeating the caller's current mark answers 200 and keeps the version."""
    await create(api, "b-1")
    api.clock.advance(6 * MINUTE_MS)
    first = await api.client.post(
        "/api/sessions/b-1/ready", json={"ready": ready}, headers=api.as_user(CLIENT)
    )
    api.clock.advance(1_000)

    again = await api.client.post(
        "/api/sessions/b-1/ready", json={"ready": ready}, headers=api.as_user(CLIENT)
    )

    assert first.status_code == 200, first.text
    assert again.status_code == 200, again.text
    assert again.json()["version"] == first.json()["version"]
    assert again.json()["participants"] == first.json()["participants"]


def test_remembered_token_still_expires_and_others_are_still_checked() -> None:
    """Remembering a verified token skips its decoding, never its expiry, and a
    token that was never verified is checked in full."""
    clock = ManualClock(T0_MS)
    issuer = TokenIssuer("k" * 32, clock)
    token = issuer.issue(CLIENT, 60).token
    assert issuer.check(token).user_id == CLIENT

    forged = TokenIssuer("other" * 8, clock).issue(CLIENT, 60).token
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, tampered):
        with pytest.raises(InvalidCredentials, match="not one this service signed"):
            issuer.check(bad)

    clock.advance(60_000)
    with pytest.raises(InvalidCredentials, match="expired"):
        issuer.check(token)


def test_remembered_tokens_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the most recent `VERIFIED_TOKENS` are remembered; older ones are decoded
    again, and still accepted."""
    monkeypatch.setattr(credentials, "VERIFIED_TOKENS", 3)
    issuer = TokenIssuer("k" * 32, ManualClock(T0_MS))
    tokens = [issuer.issue(f"user-{n}", 60).token for n in range(5)]
    decoded: list[str] = []
    decode = issuer._decode

    def counting(token: str) -> VerifiedToken:
        decoded.append(token)
        return decode(token)

    monkeypatch.setattr(issuer, "_decode", counting)
    for token in tokens:
        issuer.check(token)
    issuer.check(tokens[-1])
    issuer.check(tokens[0])

    assert decoded == [*tokens, tokens[0]]
    assert issuer.check(tokens[0]).user_id == "user-0"
