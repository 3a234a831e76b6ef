"""Bad input of every kind: the contract's status, a detail that says why, no change.

Each test starts from a session in an open lobby with the client already ready, sends
one kind of bad request, and checks that the answer is a JSON error (never a 500) and
that the session's snapshot and runtime record are exactly what they were.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from sessionclock.constants import TOKEN_AUDIENCE, TOKEN_ISSUER
from tests.conftest import BACKENDS, Api, Backend, make_backend
from tests.helpers import (
    API_KEY,
    CLIENT,
    COMPANION,
    MINUTE_MS,
    SECRET_KEY,
    STRANGER,
    T0_MS,
    booking,
)

SESSION = "b-1"
SESSION_URL = f"/api/sessions/{SESSION}"
READY_URL = f"{SESSION_URL}/ready"
BODY_LIMIT_BYTES = 64 * 1024
MALFORMED = {400, 422}

# A key in a case's changes that maps to this is removed from the body.
DROP: Any = object()


@pytest.fixture(params=BACKENDS[:2])
def backend(request: pytest.FixtureRequest) -> Backend:
    """SQLite and PostgreSQL: input is refused before Redis could take part."""
    return make_backend(request)


@pytest.fixture
async def lobby(api: Api) -> Api:
    """The app with SESSION in its open lobby and the client marked ready."""
    created = await api.client.post(
        "/api/sessions", json=booking(id=SESSION), headers=api.platform
    )
    assert created.status_code == 201, created.text
    api.clock.advance(6 * MINUTE_MS)
    marked = await api.client.post(
        READY_URL, json={"ready": True}, headers=api.as_user(CLIENT)
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == "waiting"
    return api


async def state_of(api: Api, session_id: str = SESSION) -> tuple[dict[str, Any], int]:
    """A session's snapshot without the server's time, and its runtime record size."""
    response = await api.client.get(f"/api/sessions/{session_id}", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    del body["server_time"], body["server_time_ms"]
    return body, len(await api.runtime.repository.events(session_id))


async def session_count(api: Api) -> int:
    """How many sessions the database holds, whatever their status."""
    counts = await api.runtime.repository.count_by_status()
    return sum(counts.values())


def refused(response: httpx.Response, statuses: int | set[int], *mentions: str) -> str:
    """Check an error answer: status, a JSON string `detail`, and what it names."""
    allowed = {statuses} if isinstance(statuses, int) else statuses
    assert response.status_code in allowed, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert detail
    for mention in mentions:
        assert mention in detail, (mention, detail)
    return detail


def says_what_was_expected(detail: str) -> None:
    """A detail that states the expectation, not only that something went wrong."""
    assert "expected" in detail or "should be" in detail, detail


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with `changes` applied; a change to DROP removes the key."""
    body = {**base, **changes}
    return {key: value for key, value in body.items() if value is not DROP}


def b64url(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    """Claims of a valid participant token for CLIENT, with some changed or dropped."""
    base = {
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "sub": CLIENT,
        "iat": T0_MS // 1000,
        "exp": T0_MS // 1000 + 3600,
    }
    return changed(base, changes)


def forged_tokens() -> dict[str, str]:
    """Tokens this service must refuse, by what is wrong with them."""
    return {
        "wrong-key": jwt.encode(claims(), "another-key-" + "x" * 32, "HS256"),
        "alg-none": f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims())}.",
        "alg-none-signed": (
            f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims())}."
            + jwt.encode(claims(), SECRET_KEY, "HS256").rsplit(".", 1)[1]
        ),
        "other-algorithm": jwt.encode(claims(), SECRET_KEY, "HS384"),
        "other-audience": jwt.encode(claims(aud="another-service"), SECRET_KEY),
        "other-issuer": jwt.encode(claims(iss="someone-else"), SECRET_KEY),
        "no-expiry": jwt.encode(claims(exp=DROP), SECRET_KEY),
        "no-subject": jwt.encode(claims(sub=DROP), SECRET_KEY),
        "expired": jwt.encode(claims(exp=T0_MS // 1000 - 1), SECRET_KEY),
        "tampered-subject": _with_payload(
            jwt.encode(claims(), SECRET_KEY), claims(sub=COMPANION)
        ),
        "garbage": "not-a-token",
        "platform-key-prefix": API_KEY[:-1],
    }


def _with_payload(token: str, payload: dict[str, Any]) -> str:
    header, _payload, signature = token.split(".")
    return f"{header}.{b64url(payload)}.{signature}"


# Create bodies that must be refused, each with a word the detail must contain.
BAD_BOOKINGS = [
    pytest.param({"duration_s": "1800"}, "duration_s", id="duration-as-string"),
    pytest.param({"duration_s": 1800.5}, "duration_s", id="duration-as-float"),
    pytest.param({"duration_s": True}, "duration_s", id="duration-as-bool"),
    pytest.param({"client_id": 7}, "client_id", id="client-as-number"),
    pytest.param({"companion_id": None}, "companion_id", id="companion-null"),
    pytest.param({"client_id": ""}, "client_id", id="client-empty"),
    pytest.param({"client_id": "u 7"}, "client_id", id="client-with-space"),
    pytest.param({"client_id": "u" * 200}, "client_id", id="client-too-long"),
    pytest.param({"client_id": DROP}, "client_id", id="client-missing"),
    pytest.param({"booking_status": "maybe"}, "booking_status", id="booking-status"),
    pytest.param({"lobby_lead_s": -1}, "lobby_lead_s", id="lobby-lead-negative"),
    pytest.param({"lobby_lead_s": 10**9}, "lobby_lead_s", id="lobby-lead-absurd"),
    pytest.param({"lobby_lead_s": "300"}, "lobby_lead_s", id="lobby-lead-string"),
    pytest.param({"colour": "red"}, "colour", id="unknown-field"),
    pytest.param({"status": "ready"}, "status", id="unknown-field-status"),
    pytest.param({"version": 99}, "version", id="unknown-field-version"),
    pytest.param(
        {"starts_at": "2026-12-03T18:10:00"}, "starts_at", id="starts-without-zone"
    ),
    pytest.param(
        {"duration_s": DROP, "ends_at": "2026-12-03T18:40:00"},
        "ends_at",
        id="ends-without-zone",
    ),
    pytest.param({"starts_at": "tomorrow"}, "starts_at", id="starts-not-a-time"),
    pytest.param(
        {"starts_at": "2026-13-40T25:00:00Z"}, "starts_at", id="starts-impossible"
    ),
    pytest.param({"starts_at": DROP}, "starts_at", id="starts-missing"),
    pytest.param(
        {"duration_s": DROP, "ends_at": "2026-12-03T18:00:00.000Z"},
        "ends_at",
        id="ends-before-starts",
    ),
    pytest.param(
        {"duration_s": DROP, "ends_at": "2026-12-03T18:10:00.000Z"},
        "ends_at",
        id="ends-at-starts",
    ),
    pytest.param({"ends_at": "2026-12-03T18:40:00.000Z"}, "duration_s", id="both-ends"),
    pytest.param({"duration_s": DROP}, "duration_s", id="neither-end"),
    pytest.param({"duration_s": -60}, "duration_s", id="duration-negative"),
    pytest.param({"duration_s": 0}, "duration_s", id="duration-zero"),
    pytest.param({"duration_s": 10**9}, "duration_s", id="duration-absurd"),
    pytest.param({"duration_s": 10**30}, "duration_s", id="duration-huge-integer"),
    pytest.param({"duration_s": 24 * 3600 + 1}, "duration_s", id="duration-one-day"),
    pytest.param(
        {"duration_s": DROP, "ends_at": "9999-12-31T23:59:59.999Z"},
        "session",
        id="ends-year-9999",
    ),
    pytest.param(
        {"starts_at": "1970-01-01T00:00:00.000Z"}, "starts_at", id="starts-1970"
    ),
    pytest.param(
        {"starts_at": "0001-01-01T00:00:00.000Z"}, "starts_at", id="starts-year-1"
    ),
    pytest.param(
        {"starts_at": "9999-12-31T23:59:59.999Z"}, "starts_at", id="starts-9999"
    ),
    pytest.param(
        {
            "starts_at": "9999-12-31T23:00:00.000Z",
            "duration_s": DROP,
            "ends_at": "9999-12-31T23:59:59-14:00",
        },
        "starts_at",
        id="ends-past-year-9999",
    ),
    pytest.param({"starts_at": 10**12}, "starts_at", id="starts-as-number"),
    pytest.param({"companion_id": CLIENT}, "companion", id="client-is-companion"),
]


@pytest.mark.parametrize(("changes", "mention"), BAD_BOOKINGS)
async def test_create_bad_booking_is_refused(
    lobby: Api, changes: dict[str, Any], mention: str
) -> None:
    """A bad booking, posted or put, is a 422 naming the field; nothing is written."""
    api = lobby
    before, count = await state_of(api), await session_count(api)

    answers = [
        await api.client.post(
            "/api/sessions",
            json=changed(booking(id="b-new"), changes),
            headers=api.platform,
        ),
        await api.client.post(
            "/api/sessions",
            json=changed(booking(id=SESSION), changes),
            headers=api.platform,
        ),
        await api.client.put(
            "/api/sessions/b-new",
            json=changed(booking(), changes),
            headers=api.platform,
        ),
        await api.client.put(
            SESSION_URL, json=changed(booking(), changes), headers=api.platform
        ),
    ]

    for answer in answers:
        refused(answer, 422, mention)
    assert await session_count(api) == count
    assert await state_of(api) == before


@pytest.mark.parametrize(
    "body_id",
    ["", "bad id", "b/1", "../b-1", "-b", "b$1", "b" * 129, "b-ñ", "b\x001"],
)
async def test_create_bad_id_in_body_is_refused(lobby: Api, body_id: str) -> None:
    """A create body whose id breaks the id rules is a 422 naming `id`."""
    api = lobby
    count = await session_count(api)

    response = await api.client.post(
        "/api/sessions", json=booking(id=body_id), headers=api.platform
    )

    refused(response, 422, "id")
    assert await session_count(api) == count


# Malformed bodies, as raw bytes sent with a JSON content type.
MALFORMED_BODIES = [
    pytest.param(b'{"ready": ', id="truncated"),
    pytest.param(b"{ready: true}", id="unquoted-key"),
    pytest.param(b"{'ready': true}", id="single-quotes"),
    pytest.param(b'{"ready": true,}', id="trailing-comma"),
    pytest.param(b"", id="empty"),
    pytest.param(b"[]", id="array"),
    pytest.param(b'[{"ready": true}]', id="array-of-object"),
    pytest.param(b'"ready"', id="string"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="bare-true"),
    pytest.param(b"42", id="number"),
    pytest.param(b'{"ready": true}\n{"ready": true}', id="two-documents"),
    pytest.param(b'{"ready": "\xff\xfe"}', id="invalid-utf8"),
    pytest.param(b"[" * 20_000 + b"]" * 20_000, id="deeply-nested"),
    pytest.param(b'{"ready": NaN}', id="nan"),
]


@pytest.mark.parametrize("content", MALFORMED_BODIES)
async def test_post_malformed_json_is_refused(lobby: Api, content: bytes) -> None:
    """Malformed or non-object JSON on any JSON endpoint is a 400 or 422; no change."""
    api = lobby
    before, count = await state_of(api), await session_count(api)
    json_header = {"Content-Type": "application/json"}

    for url, headers in (
        ("/api/sessions", api.platform),
        ("/api/tokens", api.platform),
        (READY_URL, api.as_user(CLIENT)),
        (READY_URL, api.as_user(COMPANION)),
    ):
        response = await api.client.post(
            url, content=content, headers={**headers, **json_header}
        )
        says_what_was_expected(refused(response, MALFORMED))
    put = await api.client.put(
        SESSION_URL, content=content, headers={**api.platform, **json_header}
    )
    says_what_was_expected(refused(put, MALFORMED))

    assert await session_count(api) == count
    assert await state_of(api) == before


async def test_post_json_as_plain_text_is_refused(lobby: Api) -> None:
    """A valid body sent as text/plain is refused rather than guessed at."""
    api = lobby
    before = await state_of(api)

    response = await api.client.post(
        READY_URL,
        content=b'{"ready": false}',
        headers={**api.as_user(CLIENT), "Content-Type": "text/plain"},
    )

    refused(response, MALFORMED | {415})
    assert await state_of(api) == before


@pytest.mark.parametrize(
    ("body", "mention"),
    [
        pytest.param({"ready": "yes"}, "ready", id="string-yes"),
        pytest.param({"ready": "true"}, "ready", id="string-true"),
        pytest.param({"ready": 1}, "ready", id="number-one"),
        pytest.param({"ready": 0}, "ready", id="number-zero"),
        pytest.param({"ready": None}, "ready", id="null"),
        pytest.param({"ready": {}}, "ready", id="object"),
        pytest.param({}, "ready", id="missing"),
        pytest.param(
            {"ready": False, "user_id": COMPANION}, "user_id", id="unknown-user-id"
        ),
        pytest.param({"ready": False, "role": "client"}, "role", id="unknown-role"),
    ],
)
async def test_ready_bad_body_is_refused(
    lobby: Api, body: dict[str, Any], mention: str
) -> None:
    """A ready body that is not exactly `{"ready": <bool>}` is a 422; no mark moves."""
    api = lobby
    before = await state_of(api)

    response = await api.client.post(READY_URL, json=body, headers=api.as_user(CLIENT))

    refused(response, 422, mention)
    assert await state_of(api) == before


@pytest.mark.parametrize(
    ("body", "mention"),
    [
        pytest.param({"user_id": CLIENT, "ttl_s": 0}, "ttl_s", id="ttl-zero"),
        pytest.param({"user_id": CLIENT, "ttl_s": -1}, "ttl_s", id="ttl-negative"),
        pytest.param({"user_id": CLIENT, "ttl_s": 10**9}, "ttl_s", id="ttl-absurd"),
        pytest.param(
            {"user_id": CLIENT, "ttl_s": 30 * 86_400 + 1}, "ttl_s", id="ttl-over-max"
        ),
        pytest.param({"user_id": CLIENT, "ttl_s": 10**40}, "ttl_s", id="ttl-huge"),
        pytest.param({"user_id": CLIENT, "ttl_s": "60"}, "ttl_s", id="ttl-string"),
        pytest.param({"user_id": CLIENT, "ttl_s": 1.5}, "ttl_s", id="ttl-float"),
        pytest.param({"user_id": CLIENT, "ttl_s": True}, "ttl_s", id="ttl-bool"),
        pytest.param({"user_id": CLIENT, "ttl_s": None}, "ttl_s", id="ttl-null"),
        pytest.param({"ttl_s": 60}, "user_id", id="user-missing"),
        pytest.param({"user_id": 7}, "user_id", id="user-number"),
        pytest.param({"user_id": ""}, "user_id", id="user-empty"),
        pytest.param({"user_id": "u 7"}, "user_id", id="user-bad-characters"),
        pytest.param({"user_id": "u" * 200}, "user_id", id="user-too-long"),
        pytest.param(
            {"user_id": CLIENT, "scope": "platform"}, "scope", id="unknown-field"
        ),
    ],
)
async def test_token_bad_body_is_refused(
    api: Api, body: dict[str, Any], mention: str
) -> None:
    """A bad token request is a 422 naming the field, and no token comes back."""
    response = await api.client.post("/api/tokens", json=body, headers=api.platform)

    refused(response, 422, mention)
    assert "token" not in response.json()


@pytest.mark.parametrize(
    "session_id",
    [
        pytest.param("b" * 129, id="too-long"),
        pytest.param("b" * 10_000, id="far-too-long"),
        pytest.param("bad%20id", id="space"),
        pytest.param("b$1", id="dollar"),
        pytest.param("-b", id="leading-dash"),
        pytest.param(".b", id="leading-dot"),
        pytest.param("b%C3%B1", id="non-ascii"),
        pytest.param("b%001", id="nul-byte"),
        pytest.param("b'%3B--", id="sql-ish"),
    ],
)
async def test_request_bad_session_id_is_refused(lobby: Api, session_id: str) -> None:
    """A session id that breaks the id rules is refused on every session route."""
    api = lobby
    before, count = await state_of(api), await session_count(api)
    url = f"/api/sessions/{session_id}"
    client = api.as_user(CLIENT)

    answers = [
        await api.client.get(url, headers=api.platform),
        await api.client.get(url, headers=client),
        await api.client.get(f"{url}/ready", headers=client),
        await api.client.post(f"{url}/ready", json={"ready": True}, headers=client),
        await api.client.post(f"{url}/cancel", headers=api.platform),
        await api.client.put(url, json=booking(), headers=api.platform),
    ]

    for answer in answers:
        detail = refused(answer, MALFORMED | {404})
        if answer.status_code != 404:
            assert "session_id" in detail
    assert await session_count(api) == count
    assert await state_of(api) == before


async def test_request_session_id_with_slash_is_not_found(lobby: Api) -> None:
    """An encoded slash in a session id matches no session route and changes nothing."""
    api = lobby
    before = await state_of(api)

    response = await api.client.post("/api/sessions/b%2F1/cancel", headers=api.platform)

    refused(response, MALFORMED | {404, 405})
    assert await state_of(api) == before


async def body_stream(size: int, chunk: int = 8 * 1024) -> AsyncIterator[bytes]:
    """`size` bytes of a JSON-looking body, in chunks, with no declared length."""
    yield b'{"ready": true, "pad": "'
    sent = 0
    while sent < size:
        yield b"x" * chunk
        sent += chunk
    yield b'"}'


def big_body(size: int) -> bytes:
    return b'{"ready": true, "pad": "' + b"x" * size + b'"}'


@pytest.mark.parametrize(
    ("method", "url", "as_client"),
    [
        pytest.param("POST", "/api/sessions", False, id="create"),
        pytest.param("PUT", SESSION_URL, False, id="put"),
        pytest.param("POST", READY_URL, True, id="ready"),
        pytest.param("POST", "/api/tokens", False, id="tokens"),
        pytest.param("POST", f"{SESSION_URL}/cancel", False, id="cancel"),
    ],
)
async def test_post_huge_body_with_length_is_too_large(
    lobby: Api, method: str, url: str, as_client: bool
) -> None:
    """A body over 64 KiB with a Content-Length is a 413 that names the limit."""
    api = lobby
    before = await state_of(api)
    headers = api.as_user(COMPANION) if as_client else api.platform

    response = await api.client.request(
        method,
        url,
        content=big_body(BODY_LIMIT_BYTES + 1),
        headers={**headers, "Content-Type": "application/json"},
    )

    refused(response, 413, str(BODY_LIMIT_BYTES))
    assert await state_of(api) == before


@pytest.mark.parametrize(
    ("method", "url", "as_client"),
    [
        pytest.param("POST", "/api/sessions", False, id="create"),
        pytest.param("PUT", SESSION_URL, False, id="put"),
        pytest.param("POST", READY_URL, True, id="ready"),
        pytest.param("POST", "/api/tokens", False, id="tokens"),
    ],
)
async def test_post_huge_body_streamed_is_too_large(
    lobby: Api, method: str, url: str, as_client: bool
) -> None:
    """A chunked body that grows past 64 KiB is a 413 that names the limit."""
    api = lobby
    before = await state_of(api)
    headers = api.as_user(COMPANION) if as_client else api.platform

    response = await api.client.request(
        method,
        url,
        content=body_stream(BODY_LIMIT_BYTES + 1),
        headers={**headers, "Content-Type": "application/json"},
    )

    refused(response, 413, str(BODY_LIMIT_BYTES))
    assert await state_of(api) == before


async def test_post_body_just_under_limit_is_read(lobby: Api) -> None:
    """A body just under 64 KiB is read and judged on its content, not its size."""
    api = lobby
    before = await state_of(api)
    content = big_body(BODY_LIMIT_BYTES - 100)
    assert len(content) <= BODY_LIMIT_BYTES

    response = await api.client.post(
        READY_URL,
        content=content,
        headers={**api.as_user(COMPANION), "Content-Type": "application/json"},
    )

    refused(response, 422, "pad")
    assert await state_of(api) == before


async def test_request_unknown_session_is_not_found(lobby: Api) -> None:
    """Every session route answers 404 naming an id that no session has."""
    api = lobby
    before = await state_of(api)
    client = api.as_user(CLIENT)

    answers = [
        await api.client.get("/api/sessions/b-404", headers=api.platform),
        await api.client.get("/api/sessions/b-404/ready", headers=api.platform),
        await api.client.post("/api/sessions/b-404/cancel", headers=api.platform),
        await api.client.get("/api/sessions/b-404", headers=client),
        await api.client.get("/api/sessions/b-404/ready", headers=client),
        await api.client.post(
            "/api/sessions/b-404/ready", json={"ready": True}, headers=client
        ),
    ]

    for answer in answers:
        refused(answer, 404, "b-404")
    assert await state_of(api) == before


async def test_request_other_users_session_is_not_found(lobby: Api) -> None:
    """A stranger gets 404 on every route of a session and learns none of its data."""
    api = lobby
    before = await state_of(api)
    snapshot = before[0]
    stranger = api.as_user(STRANGER)

    answers = [
        await api.client.get(SESSION_URL, headers=stranger),
        await api.client.get(READY_URL, headers=stranger),
        await api.client.post(READY_URL, json={"ready": True}, headers=stranger),
        await api.client.post(READY_URL, json={"ready": False}, headers=stranger),
    ]

    for answer in answers:
        refused(answer, 404, SESSION)
        for secret in (CLIENT, COMPANION, snapshot["starts_at"], snapshot["ends_at"]):
            assert secret not in answer.text
    assert await state_of(api) == before
    mine = await api.client.get("/api/me/sessions", headers=stranger)
    assert mine.status_code == 200
    assert mine.json()["sessions"] == []


@pytest.mark.parametrize("kind", sorted(forged_tokens()))
async def test_request_forged_token_is_unauthorized(lobby: Api, kind: str) -> None:
    """A token this service did not sign as it signs is a 401, in header or query."""
    api = lobby
    before = await state_of(api)
    token = forged_tokens()[kind]
    bearer = {"Authorization": f"Bearer {token}"}

    answers = [
        await api.client.get(SESSION_URL, headers=bearer),
        await api.client.get(READY_URL, params={"access_token": token}),
        await api.client.post(READY_URL, json={"ready": False}, headers=bearer),
        await api.client.post(
            READY_URL, json={"ready": False}, params={"access_token": token}
        ),
        await api.client.get("/api/me/sessions", headers=bearer),
    ]

    for answer in answers:
        refused(answer, 401, "credentials")
        assert answer.headers["www-authenticate"].lower().startswith("bearer")
        assert CLIENT not in answer.text
    assert await state_of(api) == before


async def test_request_expired_token_is_unauthorized(lobby: Api) -> None:
    """A token past its ttl on the server's clock is a 401 that says it expired."""
    api = lobby
    headers = api.as_user(CLIENT, ttl_s=60)
    assert (await api.client.get(SESSION_URL, headers=headers)).status_code == 200
    api.clock.advance(60_000)
    before = await state_of(api)

    answers = [
        await api.client.get(SESSION_URL, headers=headers),
        await api.client.post(READY_URL, json={"ready": False}, headers=headers),
    ]

    for answer in answers:
        refused(answer, 401, "expired")
    assert await state_of(api) == before


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param(f"Basic {API_KEY}", id="basic-scheme"),
        pytest.param(API_KEY, id="no-scheme"),
        pytest.param(f"Bearer {API_KEY}x", id="wrong-platform-key"),
        pytest.param(f"Bearer {API_KEY.upper()}", id="platform-key-other-case"),
    ],
)
async def test_request_bad_authorization_is_unauthorized(
    lobby: Api, authorization: str | None
) -> None:
    """Missing or malformed credentials are a 401 on platform and participant routes."""
    api = lobby
    before, count = await state_of(api), await session_count(api)
    headers = {} if authorization is None else {"Authorization": authorization}

    answers = [
        await api.client.get(SESSION_URL, headers=headers),
        await api.client.post(f"{SESSION_URL}/cancel", headers=headers),
        await api.client.post(READY_URL, json={"ready": False}, headers=headers),
        await api.client.post(
            "/api/sessions", json=booking(id="b-new"), headers=headers
        ),
        await api.client.post("/api/tokens", json={"user_id": CLIENT}, headers=headers),
    ]

    for answer in answers:
        refused(answer, 401, "credentials")
    assert await session_count(api) == count
    assert await state_of(api) == before


async def test_participant_calls_platform_endpoint_is_forbidden(lobby: Api) -> None:
    """A participant's token on a platform route is a 403 and does nothing."""
    api = lobby
    before, count = await state_of(api), await session_count(api)
    client = api.as_user(CLIENT)

    answers = [
        await api.client.post(
            "/api/sessions", json=booking(id="b-new"), headers=client
        ),
        await api.client.put(SESSION_URL, json=booking(duration_s=60), headers=client),
        await api.client.post(f"{SESSION_URL}/cancel", headers=client),
        await api.client.post(
            f"{SESSION_URL}/cancel",
            params={"access_token": client["Authorization"][7:]},
        ),
        await api.client.post(
            "/api/tokens", json={"user_id": COMPANION}, headers=client
        ),
        await api.client.get("/api/sessions/cleanup", headers=client),
        await api.client.post("/api/sessions/cleanup", headers=client),
    ]

    for answer in answers:
        refused(answer, 403, "platform")
        assert "token" not in answer.json()
    assert await session_count(api) == count
    assert await state_of(api) == before
    assert await api.runtime.repository.last_cleanup() is None


async def test_participant_calls_cron_endpoint_is_unauthorized(lobby: Api) -> None:
    """Neither a participant token nor the platform key opens the cron endpoint."""
    api = lobby
    before = await state_of(api)

    for headers in (api.as_user(CLIENT), api.platform):
        for method in ("GET", "POST"):
            answer = await api.client.request(
                method, "/api/cron/cleanup-sessions", headers=headers
            )
            refused(answer, 401, "cron")
    assert await state_of(api) == before
    assert await api.runtime.repository.last_cleanup() is None


async def test_platform_marks_ready_is_forbidden(lobby: Api) -> None:
    """The platform cannot mark anyone ready: POST ready needs a participant token."""
    api = lobby
    before = await state_of(api)

    for ready in (True, False):
        answer = await api.client.post(
            READY_URL, json={"ready": ready}, headers=api.platform
        )
        refused(answer, 403, "participant")
    assert await state_of(api) == before


async def test_platform_lists_my_sessions_is_forbidden(api: Api) -> None:
    """The platform key is not a participant: GET /api/me/sessions is a 403."""
    response = await api.client.get("/api/me/sessions", headers=api.platform)

    refused(response, 403, "participant")


async def test_ready_before_lobby_opens_conflicts(api: Api) -> None:
    """A ready mark before the lobby opens is a 409 that says when it opens."""
    await api.client.post(
        "/api/sessions", json=booking(id=SESSION), headers=api.platform
    )
    api.clock.advance(5 * MINUTE_MS - 1)
    before = await state_of(api)

    for user in (CLIENT, COMPANION):
        for ready in (True, False):
            answer = await api.client.post(
                READY_URL, json={"ready": ready}, headers=api.as_user(user)
            )
            refused(answer, 409, "2026-12-03T18:05:00.000Z")
    assert await state_of(api) == before
    assert before[0]["status"] == "scheduled"


@pytest.mark.parametrize(
    ("advance_ms", "status"),
    [
        pytest.param(40 * MINUTE_MS, "expired", id="after-end"),
        pytest.param(16 * MINUTE_MS, "expired", id="after-no-show"),
    ],
)
async def test_ready_after_end_conflicts(
    lobby: Api, advance_ms: int, status: str
) -> None:
    """Once a session has ended, a ready mark either way is a 409; nothing changes."""
    api = lobby
    api.clock.advance(advance_ms)
    before = await state_of(api)
    assert before[0]["status"] == status

    for user in (CLIENT, COMPANION):
        for ready in (True, False):
            answer = await api.client.post(
                READY_URL, json={"ready": ready}, headers=api.as_user(user)
            )
            refused(answer, 409, status)
    assert await state_of(api) == before


async def test_ready_after_cancel_conflicts(lobby: Api) -> None:
    """A ready mark on a cancelled session is a 409 and changes nothing."""
    api = lobby
    cancelled = await api.client.post(f"{SESSION_URL}/cancel", headers=api.platform)
    assert cancelled.status_code == 200
    before = await state_of(api)

    answer = await api.client.post(
        READY_URL, json={"ready": True}, headers=api.as_user(COMPANION)
    )

    refused(answer, 409, "cancelled")
    assert await state_of(api) == before


async def test_unready_after_both_ready_conflicts(lobby: Api) -> None:
    """Once both are ready the call is open: taking a mark back is a 409."""
    api = lobby
    both = await api.client.post(
        READY_URL, json={"ready": True}, headers=api.as_user(COMPANION)
    )
    assert both.json()["status"] == "ready"
    before = await state_of(api)

    for user in (CLIENT, COMPANION):
        answer = await api.client.post(
            READY_URL, json={"ready": False}, headers=api.as_user(user)
        )
        refused(answer, 409, SESSION)
    assert await state_of(api) == before


@pytest.mark.parametrize(
    "within_s",
    [
        pytest.param(str(10**12), id="absurd"),
        pytest.param("9" * 5000, id="five-thousand-digits"),
        pytest.param(str(366 * 86_400 + 1), id="over-a-year"),
        pytest.param("-1", id="negative"),
        pytest.param("1.5", id="fraction"),
        pytest.param("soon", id="word"),
        pytest.param("", id="empty"),
        pytest.param("1e3", id="exponent"),
    ],
)
async def test_list_mine_bad_within_is_refused(lobby: Api, within_s: str) -> None:
    """A `within_s` that is not a sane number of seconds is a 422 naming it."""
    api = lobby

    response = await api.client.get(
        "/api/me/sessions",
        params={"within_s": within_s},
        headers=api.as_user(CLIENT),
    )

    refused(response, 422, "within_s")


async def test_list_mine_largest_within_is_accepted(lobby: Api) -> None:
    """The largest allowed `within_s` (366 days) lists the caller's session."""
    api = lobby

    response = await api.client.get(
        "/api/me/sessions",
        params={"within_s": 366 * 86_400},
        headers=api.as_user(CLIENT),
    )

    assert response.status_code == 200, response.text
    assert [s["id"] for s in response.json()["sessions"]] == [SESSION]


async def test_post_unknown_route_is_json_not_found(api: Api) -> None:
    """A path the API does not have is a JSON 404, not an HTML page or a 500."""
    response = await api.client.post("/api/nothing-here", headers=api.platform)

    refused(response, 404)


async def test_request_wrong_method_is_refused(lobby: Api) -> None:
    """A method a route does not take is a JSON 405 and changes nothing."""
    api = lobby
    before = await state_of(api)

    response = await api.client.delete(SESSION_URL, headers=api.platform)

    refused(response, 405)
    assert await state_of(api) == before
