"""Ready marks outside FastAPI's stack: served there when plain, the same otherwise."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from tests.conftest import Api, Backend
from tests.helpers import CLIENT, MINUTE_MS, STRANGER, booking

ORIGIN = "https://platform.example"
JSON = "application/json"
READY = b'{"ready": true}'


@pytest.fixture
async def counted(api: Api) -> list[str]:
    """The paths of the requests that went through FastAPI's whole stack."""
    paths: list[str] = []
    full_stack = api.app.full_stack

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        paths.append(scope["path"])
        await full_stack(scope, receive, send)

    api.app.ready_marks._full_stack = counting
    await api.client.post(
        "/api/sessions", json=booking(id="hp-1"), headers=api.platform
    )
    api.clock.advance(6 * MINUTE_MS)
    paths.clear()
    return paths


async def test_plain_mark_skips_the_stack(api: Api, counted: list[str]) -> None:
    """A participant's plain mark is served, and timed, without FastAPI's stack."""
    response = await api.client.post(
        "/api/sessions/hp-1/ready", json={"ready": True}, headers=api.as_user(CLIENT)
    )

    assert response.status_code == 200, response.text
    assert response.json()["participants"]["client"]["ready"] is True
    assert counted == []
    metrics = (await api.client.get("/metrics")).text
    assert (
        'sessionclock_http_request_duration_seconds_count{method="POST",'
        'route="/api/sessions/{session_id}/ready",status="200"} 1.0'
    ) in metrics


@pytest.mark.parametrize(
    ("content", "credentials", "content_type", "status"),
    [
        pytest.param(READY, "platform", JSON, 403, id="platform-key"),
        pytest.param(b'{"ready": "yes"}', "client", JSON, 422, id="not-a-boolean"),
        pytest.param(b'{"ready": true, "x": 1}', "client", JSON, 422, id="extra-field"),
        pytest.param(b"[true]", "client", JSON, 422, id="not-an-object"),
        pytest.param(b"{", "client", JSON, 422, id="malformed"),
        pytest.param(b"[" * 100_000, "client", JSON, 413, id="too-big"),
        pytest.param(READY, "bad-token", JSON, 401, id="bad-token"),
        pytest.param(READY, "none", JSON, 401, id="no-credentials"),
        pytest.param(READY, "query", JSON, 200, id="token-in-address"),
        pytest.param(READY, "client", "text/plain", 422, id="not-json-content"),
    ],
)
async def test_other_marks_go_through_the_stack(
    api: Api,
    counted: list[str],
    content: bytes,
    credentials: str,
    content_type: str,
    status: int,
) -> None:
    """A mark that is not plain reaches the route with its body, and its answer."""
    url = "/api/sessions/hp-1/ready"
    headers = {"Content-Type": content_type}
    if credentials == "platform":
        headers.update(api.platform)
    elif credentials == "client":
        headers.update(api.as_user(CLIENT))
    elif credentials == "bad-token":
        headers["Authorization"] = "Bearer not-a-token"
    elif credentials == "query":
        url += f"?access_token={api.runtime.issuer.issue(CLIENT, 3600).token}"

    response = await api.client.post(url, content=content, headers=headers)

    assert response.status_code == status, response.text
    assert counted == [url.split("?")[0]]
    if status == 200:
        assert response.json()["participants"]["client"]["ready"] is True
    else:
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("session_id", "user_id", "status"),
    [
        pytest.param("hp-1", STRANGER, 404, id="stranger"),
        pytest.param("hp-9", CLIENT, 404, id="unknown-session"),
        pytest.param("hp-far", CLIENT, 409, id="lobby-not-open"),
    ],
)
async def test_refusal_in_hot_path_reads_like_the_route(
    api: Api, counted: list[str], session_id: str, user_id: str, status: int
) -> None:
    """A plain mark the service refuses gets the route's status and text."""
    await api.client.post(
        "/api/sessions",
        json=booking(60 * MINUTE_MS, now_ms=api.clock.now_ms(), id="hp-far"),
        headers=api.platform,
    )
    counted.clear()

    async def mark() -> Any:
        return await api.client.post(
            f"/api/sessions/{session_id}/ready",
            json={"ready": True},
            headers=api.as_user(user_id),
        )

    served_here = await mark()
    ready_marks, api.app.ready_marks = api.app.ready_marks, None
    try:
        by_the_route = await mark()
    finally:
        api.app.ready_marks = ready_marks

    assert counted == []
    assert served_here.status_code == by_the_route.status_code == status
    assert served_here.json() == by_the_route.json()
    assert served_here.headers["content-type"] == by_the_route.headers["content-type"]


async def test_mark_with_a_bad_session_id_goes_through_the_stack(
    api: Api, counted: list[str]
) -> None:
    """A session id the route's pattern refuses gets the route's 422."""
    response = await api.client.post(
        "/api/sessions/-x/ready", json={"ready": True}, headers=api.as_user(CLIENT)
    )

    assert response.status_code == 422
    assert counted == ["/api/sessions/-x/ready"]


async def test_cross_origin_mark_goes_through_cors(
    api_factory: Any, backend: Backend
) -> None:
    """With CORS on, a mark from another site gets its CORS headers from the stack."""
    api: Api = await api_factory(backend, allowed_origins=(ORIGIN,))
    await api.client.post(
        "/api/sessions", json=booking(id="hp-2"), headers=api.platform
    )
    api.clock.advance(6 * MINUTE_MS)

    response = await api.client.post(
        "/api/sessions/hp-2/ready",
        json={"ready": True},
        headers={**api.as_user(CLIENT), "Origin": ORIGIN},
    )

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
