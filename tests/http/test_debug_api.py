"""Debug controls and browser log reports over HTTP, on every backend.

The `api` fixture's settings leave SESSIONCLOCK_ENV at its default, development, so
its app mounts the debug routes; `production` builds the same app in production.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from structlog.testing import capture_logs

from sessionclock.constants import CLIENT_LOG_MAX_CHARS, PAGE_TOKEN_COOKIE
from sessionclock.core.clock import to_iso
from sessionclock.http.routes.debug import TEST_CLIENT, TEST_COMPANION
from tests.conftest import Api, Backend
from tests.helpers import MINUTE_MS, T0_MS, booking

ApiFactory = Callable[..., Awaitable[Api]]

STATE_URL = "/api/debug/state"
SESSIONS_URL = "/api/debug/sessions"
CLEANUP_URL = "/api/debug/cleanup"
LOGS_URL = "/api/client-logs"
STATUSES = {"scheduled", "waiting", "ready", "expired", "cancelled"}
CLIENT_LOG_LIMIT = 30


@pytest.fixture
async def production(api_factory: ApiFactory, backend: Backend) -> Api:
    """The app on each backend with SESSIONCLOCK_ENV=production."""
    return await api_factory(backend, env="production")


@pytest.fixture
async def sqlite_api(api_factory: ApiFactory, sqlite_url: str) -> Api:
    """The development app on SQLite alone: for input refused before any store."""
    return await api_factory(Backend("sqlite", sqlite_url))


@pytest.fixture
async def sqlite_production(api_factory: ApiFactory, sqlite_url: str) -> Api:
    """The production app on SQLite alone: routes are mounted the same on all."""
    return await api_factory(Backend("sqlite", sqlite_url), env="production")


async def create(api: Api, session_id: str, **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/sessions", json=booking(id=session_id, **extra), headers=api.platform
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_test_session(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.client.post(SESSIONS_URL, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def state(api: Api) -> dict[str, Any]:
    response = await api.client.get(STATE_URL)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def session(api: Api, session_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/api/sessions/{session_id}", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def client_events(logs: list[MutableMapping[str, Any]]) -> list[dict[str, Any]]:
    """The captured events that browsers reported, as plain dicts."""
    return [dict(entry) for entry in logs if str(entry["event"]).startswith("client.")]


# Production


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/debug"),
        ("GET", "/debug?access_token=x&lang=es"),
        ("GET", STATE_URL),
        ("POST", SESSIONS_URL),
        ("POST", "/api/debug/sessions/b-1/open-lobby"),
        ("POST", CLEANUP_URL),
        ("GET", "/api/debug/anything"),
    ],
)
async def test_debug_paths_are_not_found_in_production(
    sqlite_production: Api, method: str, path: str
) -> None:
    """In production the debug page and every debug endpoint answer 404."""
    await create(sqlite_production, "b-1")

    response = await sqlite_production.client.request(method, path, json={})

    assert response.status_code == 404
    assert "set-cookie" not in response.headers


async def test_debug_create_in_production_creates_nothing(production: Api) -> None:
    """A debug create sent to production leaves no session behind."""
    response = await production.client.post(SESSIONS_URL, json={})

    assert response.status_code == 404
    mine = await production.client.get(
        "/api/me/sessions", headers=production.as_user(TEST_CLIENT)
    )
    assert mine.json()["sessions"] == []


# The debug page


async def test_debug_page_in_development_is_a_page(api: Api) -> None:
    """In development `/debug` is an HTML page that loads the debug module."""
    response = await api.client.get("/debug")

    assert response.status_code == 200, response.text
    assert '<script type="module" src="/static/debug.js">' in response.text
    assert '"page": "debug"' in response.text
    assert '"development": true' in response.text


# State


async def test_state_of_empty_node(api: Api, backend: Backend) -> None:
    """With nothing booked, the state counts zero sessions and lists this node."""
    body = await state(api)

    assert body["node"] == "test-node"
    assert body["sessions_by_status"] == dict.fromkeys(STATUSES, 0)
    here = [node for node in body["nodes"] if node["node"] == "test-node"]
    assert len(here) == 1
    assert here[0]["connections"] == 0
    assert here[0]["sessions"] == 0
    assert here[0]["reported_at"] == to_iso(T0_MS)
    assert body["deadlines"] == []
    kind = "in-process" if backend.redis_url is None else "redis"
    assert body["bus"] == {"kind": kind, "connected": True}
    assert body["server_time"] == to_iso(T0_MS)


async def test_state_counts_sessions_and_lists_deadlines(api: Api) -> None:
    """After bookings, the state counts them and lists deadlines, earliest first."""
    await create(api, "b-late", starts_in_ms=60 * MINUTE_MS, lobby_lead_s=60)
    await create(api, "b-soon", starts_in_ms=20 * MINUTE_MS, lobby_lead_s=60)
    await create(api, "b-gone")
    await api.client.post("/api/sessions/b-gone/cancel", headers=api.platform)

    body = await state(api)

    assert body["sessions_by_status"] == {
        "scheduled": 2,
        "waiting": 0,
        "ready": 0,
        "expired": 0,
        "cancelled": 1,
    }
    deadlines = body["deadlines"]
    assert deadlines, body
    assert [d["at"] for d in deadlines] == sorted(d["at"] for d in deadlines)
    assert {d["session_id"] for d in deadlines} <= {"b-soon", "b-late"}
    assert deadlines[0]["session_id"] == "b-soon"
    assert deadlines[0]["at"] == to_iso(T0_MS + 19 * MINUTE_MS)
    assert "b-late" in {d["session_id"] for d in deadlines}
    assert len(deadlines) <= 10


# Test sessions


async def test_create_test_session_returns_session_and_links(api: Api) -> None:
    """A test session starts when asked, between the test users, with two links."""
    body = await create_test_session(
        api, starts_in_s=120, duration_s=600, lobby_lead_s=60
    )

    created = body["session"]
    assert created["status"] == "scheduled"
    assert created["booking_status"] == "pending"
    assert created["starts_at"] == to_iso(T0_MS + 120_000)
    assert created["ends_at"] == to_iso(T0_MS + 720_000)
    assert created["lobby_opens_at"] == to_iso(T0_MS + 60_000)
    assert created["participants"]["client"]["user_id"] == TEST_CLIENT
    assert created["participants"]["companion"]["user_id"] == TEST_COMPANION
    assert set(body["links"]) == {"client", "companion"}
    for link in body["links"].values():
        parts = urlsplit(link)
        assert parts.path == f"/sessions/{created['id']}"
        assert list(parse_qs(parts.query)) == ["access_token"]
    assert (await session(api, created["id"]))["version"] == created["version"]


async def test_create_test_session_defaults(api: Api) -> None:
    """An empty body makes a session in 2 minutes for 10, lobby a minute before."""
    created = (await create_test_session(api))["session"]

    assert created["starts_at"] == to_iso(T0_MS + 2 * MINUTE_MS)
    assert created["ends_at"] == to_iso(T0_MS + 12 * MINUTE_MS)
    assert created["lobby_lead_s"] == 60


async def test_create_test_session_links_sign_in_their_users(api: Api) -> None:
    """Following each link leaves that user's cookie: its page and `/api/me` agree."""
    body = await create_test_session(
        api, starts_in_s=120, duration_s=600, lobby_lead_s=60
    )
    session_id = body["session"]["id"]

    for role, user_id in (("client", TEST_CLIENT), ("companion", TEST_COMPANION)):
        api.client.cookies.clear()
        followed = await api.client.get(body["links"][role])
        assert followed.status_code == 303, followed.text
        assert followed.headers["location"] == f"/sessions/{session_id}"
        assert PAGE_TOKEN_COOKIE in api.client.cookies

        me = await api.client.get("/api/me")
        page = await api.client.get(followed.headers["location"])

        assert me.json() == {"user_id": user_id}, role
        assert page.status_code == 200, page.text
        assert f'user-id="{user_id}"' in page.text


async def test_create_test_session_confirmed(api: Api) -> None:
    """`booking_status` may ask for a confirmed booking instead of a pending one."""
    created = (await create_test_session(api, booking_status="confirmed"))["session"]

    assert created["booking_status"] == "confirmed"


@pytest.mark.parametrize(
    "body",
    [
        {"starts_in_s": -1},
        {"starts_in_s": 7 * 86_400 + 1},
        {"starts_in_s": "soon"},
        {"starts_in_s": 1.5},
        {"duration_s": 0},
        {"duration_s": 24 * 3600 + 1},
        {"lobby_lead_s": -1},
        {"lobby_lead_s": 24 * 3600 + 1},
        {"booking_status": "maybe"},
        {"starts_in_s": 120, "client_id": "someone"},
        [],
        "starts_in_s=120",
    ],
)
async def test_create_test_session_refuses_bad_body(sqlite_api: Api, body: Any) -> None:
    """A bad body is a 422 with a detail and creates no session."""
    response = await sqlite_api.client.post(SESSIONS_URL, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert (await state(sqlite_api))["sessions_by_status"] == dict.fromkeys(STATUSES, 0)


async def test_create_test_session_refuses_non_json(sqlite_api: Api) -> None:
    """A body that is not JSON is a 422 and creates no session."""
    response = await sqlite_api.client.post(
        SESSIONS_URL,
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 422, response.text
    assert (await state(sqlite_api))["sessions_by_status"] == dict.fromkeys(STATUSES, 0)


# Forcing a lobby open


async def test_open_lobby_moves_scheduled_session_to_waiting(api: Api) -> None:
    """Forcing the lobby of a scheduled session makes it `waiting` at once."""
    created = (
        await create_test_session(
            api, starts_in_s=3600, duration_s=600, lobby_lead_s=60
        )
    )["session"]
    session_id = created["id"]

    response = await api.client.post(f"/api/debug/sessions/{session_id}/open-lobby")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "waiting"
    assert body["starts_at"] == created["starts_at"]
    assert body["ends_at"] == created["ends_at"]
    assert body["lobby_opens_at"] <= to_iso(T0_MS)
    assert body["booking_status"] == "pending"
    assert body["version"] > created["version"]
    assert (await session(api, session_id))["status"] == "waiting"
    ready = await api.client.post(
        f"/api/sessions/{session_id}/ready",
        json={"ready": True},
        headers=api.as_user(TEST_CLIENT),
    )
    assert ready.status_code == 200, ready.text


async def test_open_lobby_on_open_lobby_changes_nothing(api: Api) -> None:
    """Forcing a lobby that is already open answers its snapshot, unchanged."""
    created = (await create_test_session(api, starts_in_s=30, lobby_lead_s=60))[
        "session"
    ]
    assert created["status"] == "waiting"
    url = f"/api/debug/sessions/{created['id']}/open-lobby"

    first = await api.client.post(url)
    again = await api.client.post(url)

    assert first.status_code == again.status_code == 200
    assert first.json()["status"] == again.json()["status"] == "waiting"
    assert first.json()["version"] == again.json()["version"] == created["version"]
    assert first.json()["lobby_lead_s"] == 60


async def test_open_lobby_on_ended_session_changes_nothing(api: Api) -> None:
    """Forcing the lobby of a cancelled session leaves it cancelled."""
    created = await create(api, "b-1")
    await api.client.post("/api/sessions/b-1/cancel", headers=api.platform)

    response = await api.client.post("/api/debug/sessions/b-1/open-lobby")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["lobby_opens_at"] == created["lobby_opens_at"]


async def test_open_lobby_of_unknown_session_is_not_found(api: Api) -> None:
    """Forcing the lobby of a session that does not exist is a 404."""
    response = await api.client.post("/api/debug/sessions/no-such/open-lobby")

    assert response.status_code == 404
    assert "no-such" in response.json()["detail"]


async def test_open_lobby_with_malformed_id_is_refused(sqlite_api: Api) -> None:
    """A session id that breaks the id pattern is a 422."""
    response = await sqlite_api.client.post("/api/debug/sessions/%20bad/open-lobby")

    assert response.status_code == 422


async def test_open_lobby_too_far_ahead_conflicts(api: Api) -> None:
    """A session more than 24 h away cannot have its lobby opened: 409, unchanged."""
    created = await create(api, "b-far", starts_in_ms=25 * 60 * MINUTE_MS)

    response = await api.client.post("/api/debug/sessions/b-far/open-lobby")

    assert response.status_code == 409
    assert "b-far" in response.json()["detail"]
    stored = await session(api, "b-far")
    assert stored["status"] == "scheduled"
    assert stored["version"] == created["version"]
    assert stored["lobby_opens_at"] == created["lobby_opens_at"]


async def test_open_lobby_exactly_24_hours_ahead_opens(api: Api) -> None:
    """A session exactly 24 h away is still close enough to open its lobby."""
    await create(api, "b-day", starts_in_ms=24 * 60 * MINUTE_MS)

    response = await api.client.post("/api/debug/sessions/b-day/open-lobby")

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "waiting"


# Cleanup


async def test_cleanup_reports_its_run(api: Api) -> None:
    """A debug cleanup runs at once and says what it expired and purged, and when."""
    await create(api, "b-over")
    await create(api, "b-later", starts_in_ms=2 * 60 * MINUTE_MS)
    api.clock.advance(41 * MINUTE_MS)

    response = await api.client.post(CLEANUP_URL)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "expired": 1,
        "purged": 0,
        "ran_at": to_iso(T0_MS + 41 * MINUTE_MS),
    }
    assert (await session(api, "b-over"))["status"] == "expired"
    assert (await session(api, "b-later"))["status"] == "scheduled"


async def test_cleanup_with_nothing_to_do(api: Api) -> None:
    """On an empty store the run expires and purges nothing."""
    response = await api.client.post(CLEANUP_URL)

    assert response.status_code == 200, response.text
    assert response.json() == {"expired": 0, "purged": 0, "ran_at": to_iso(T0_MS)}


# Client logs


async def test_client_log_is_written_to_server_log(api: Api) -> None:
    """A report answers 204 and becomes a `client.<event>` error in the log."""
    with capture_logs() as logs:
        response = await api.client.post(
            LOGS_URL,
            json={"event": "lobby.failed", "message": "HTTP 500 on ready"},
            headers={"User-Agent": "test-browser/1.0"},
        )

    assert response.status_code == 204, response.text
    assert response.content == b""
    assert client_events(logs) == [
        {
            "event": "client.lobby.failed",
            "log_level": "error",
            "message": "HTTP 500 on ready",
            "page": None,
            "session_id": None,
            "user_agent": "test-browser/1.0",
        }
    ]


async def test_client_log_warning_with_context(sqlite_api: Api) -> None:
    """A warning report with its page and session is logged as a warning with both."""
    with capture_logs() as logs:
        response = await sqlite_api.client.post(
            LOGS_URL,
            json={
                "level": "warning",
                "event": "notification.failed",
                "page": "home",
                "session_id": "b-1",
            },
        )

    assert response.status_code == 204, response.text
    [entry] = client_events(logs)
    assert entry["event"] == "client.notification.failed"
    assert entry["log_level"] == "warning"
    assert entry["page"] == "home"
    assert entry["session_id"] == "b-1"
    assert entry["message"] == ""


async def test_client_log_shortens_long_user_agent(sqlite_api: Api) -> None:
    """The logged user agent is cut to 200 characters."""
    with capture_logs() as logs:
        await sqlite_api.client.post(
            LOGS_URL, json={"event": "page.error"}, headers={"User-Agent": "x" * 500}
        )

    [entry] = client_events(logs)
    assert entry["user_agent"] == "x" * 200


async def test_client_log_takes_longest_message(sqlite_api: Api) -> None:
    """A message of exactly the maximum length is accepted."""
    response = await sqlite_api.client.post(
        LOGS_URL,
        json={"event": "lobby.failed", "message": "m" * CLIENT_LOG_MAX_CHARS},
    )

    assert response.status_code == 204, response.text


@pytest.mark.parametrize(
    "body",
    [
        {"event": "lobby.failed", "level": "info"},
        {"event": "lobby failed"},
        {"event": "Lobby.failed"},
        {"event": "1lobby"},
        {"event": "e" * 65},
        {"event": ""},
        {},
        {"event": "lobby.failed", "message": "m" * (CLIENT_LOG_MAX_CHARS + 1)},
        {"event": "lobby.failed", "token": "secret"},
        {"event": "lobby.failed", "page": "Home Page"},
        {"event": "lobby.failed", "session_id": " bad"},
        {"event": ["lobby.failed"]},
        [],
    ],
)
async def test_client_log_refuses_bad_body(sqlite_api: Api, body: Any) -> None:
    """A bad report is a 422 with a detail, and nothing reaches the log."""
    with capture_logs() as logs:
        response = await sqlite_api.client.post(LOGS_URL, json=body)

    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert client_events(logs) == []


async def test_client_log_limits_reports_per_address(api: Api) -> None:
    """The 31st report in a minute from one address is a 429 with Retry-After."""
    body = {"event": "lobby.failed", "message": "again"}
    for _ in range(CLIENT_LOG_LIMIT):
        accepted = await api.client.post(LOGS_URL, json=body)
        assert accepted.status_code == 204, accepted.text

    with capture_logs() as logs:
        refused = await api.client.post(LOGS_URL, json=body)

    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "client log reports" in refused.json()["detail"]
    assert client_events(logs) == []


async def test_client_log_limit_is_per_address(api: Api) -> None:
    """Another address may still report when one has used up its minute."""
    for _ in range(CLIENT_LOG_LIMIT + 1):
        await api.client.post(LOGS_URL, json={"event": "lobby.failed"})
    transport = api.client._transport
    assert isinstance(transport, httpx.ASGITransport)
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=transport.app, client=("203.0.113.9", 40000)),
        base_url="http://sessionclock.test",
    )

    async with other:
        response = await other.post(LOGS_URL, json={"event": "lobby.failed"})

    assert response.status_code == 204, response.text


async def test_client_log_needs_no_credentials_and_ignores_them(
    sqlite_api: Api,
) -> None:
    """Reports come before sign-in: no token is needed, a bad one is not checked."""
    response = await sqlite_api.client.post(
        LOGS_URL,
        json={"event": "page.error"},
        headers={"Authorization": "Bearer not-a-token"},
    )

    assert response.status_code == 204, response.text
