"""The sessions API on every backend, through the ASGI app on a manual clock."""

from __future__ import annotations

import asyncio

from sessionclock.core.clock import to_iso
from tests.conftest import Api
from tests.helpers import CLIENT, COMPANION, MINUTE_MS, STRANGER, T0_MS, booking


async def test_create_returns_snapshot_with_server_time(api: Api) -> None:
    """A created session comes back as a scheduled snapshot stamped with server time."""
    response = await api.client.post(
        "/api/sessions", json=booking(id="b-1", lobby_lead_s=300), headers=api.platform
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == "b-1"
    assert body["status"] == "scheduled"
    assert body["booking_status"] == "confirmed"
    assert body["starts_at"] == to_iso(T0_MS + 10 * MINUTE_MS)
    assert body["ends_at"] == to_iso(T0_MS + 40 * MINUTE_MS)
    assert body["lobby_opens_at"] == to_iso(T0_MS + 5 * MINUTE_MS)
    assert body["participants"]["client"] == {
        "user_id": CLIENT,
        "ready": False,
        "ready_at": None,
        "online": False,
    }
    assert body["version"] == 1
    assert body["server_time"] == to_iso(T0_MS)
    assert body["server_time_ms"] == T0_MS


async def test_create_same_body_again_is_noop(api: Api) -> None:
    """Posting the same id and body twice answers 200 with the same version."""
    first = await api.client.post(
        "/api/sessions", json=booking(id="b-2"), headers=api.platform
    )
    again = await api.client.post(
        "/api/sessions", json=booking(id="b-2"), headers=api.platform
    )

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["version"] == first.json()["version"]


async def test_create_same_id_other_body_conflicts(api: Api) -> None:
    """Posting another booking under a taken id is a 409 and changes nothing."""
    await api.client.post("/api/sessions", json=booking(id="b-3"), headers=api.platform)
    response = await api.client.post(
        "/api/sessions", json=booking(id="b-3", duration_s=60), headers=api.platform
    )

    assert response.status_code == 409
    assert "b-3" in response.json()["detail"]
    stored = await api.client.get("/api/sessions/b-3", headers=api.platform)
    assert stored.json()["ends_at"] == to_iso(T0_MS + 40 * MINUTE_MS)


async def test_full_lobby_flow_reaches_ready_then_time_up(api: Api) -> None:
    """Lobby opens, both mark ready, the call is ready, and at ends_at it expires."""
    await api.client.post(
        "/api/sessions",
        json=booking(id="b-4", booking_status="pending"),
        headers=api.platform,
    )

    too_early = await api.client.post(
        "/api/sessions/b-4/ready", json={"ready": True}, headers=api.as_user(CLIENT)
    )
    assert too_early.status_code == 409
    assert "lobby opens" in too_early.json()["detail"]

    api.clock.advance(6 * MINUTE_MS)
    client = await api.client.post(
        "/api/sessions/b-4/ready", json={"ready": True}, headers=api.as_user(CLIENT)
    )
    assert client.status_code == 200
    assert client.json()["status"] == "waiting"
    assert client.json()["participants"]["client"]["ready"] is True

    companion = await api.client.post(
        "/api/sessions/b-4/ready", json={"ready": True}, headers=api.as_user(COMPANION)
    )
    body = companion.json()
    assert body["status"] == "ready"
    assert body["booking_status"] == "confirmed"

    api.clock.advance(40 * MINUTE_MS)
    ended = await api.client.get("/api/sessions/b-4/ready", headers=api.as_user(CLIENT))
    assert ended.json()["status"] == "expired"
    assert ended.json()["expired_reason"] == "time_up"
    assert ended.json()["version"] > body["version"]


async def test_stranger_sees_nothing(api: Api) -> None:
    """A participant of another session gets 404 and none of this session's data."""
    await api.client.post("/api/sessions", json=booking(id="b-5"), headers=api.platform)

    response = await api.client.get("/api/sessions/b-5", headers=api.as_user(STRANGER))

    assert response.status_code == 404
    assert CLIENT not in response.text


async def test_concurrent_ready_marks_make_one_transition(api: Api) -> None:
    """50 concurrent ready calls from both participants make exactly one `ready`."""
    await api.client.post("/api/sessions", json=booking(id="b-6"), headers=api.platform)
    api.clock.advance(6 * MINUTE_MS)
    headers = [api.as_user(CLIENT), api.as_user(COMPANION)]

    responses = await asyncio.gather(
        *(
            api.client.post(
                "/api/sessions/b-6/ready", json={"ready": True}, headers=headers[i % 2]
            )
            for i in range(50)
        )
    )

    assert all(response.status_code == 200 for response in responses)
    events = await api.runtime.repository.events("b-6")
    assert [event.type for event in events].count("ready") == 1
    final = await api.client.get("/api/sessions/b-6", headers=api.platform)
    assert final.json()["status"] == "ready"
    # Created (1); the first mark also opens the lobby that time opened (2); the
    # second mark makes the transition (3).
    assert final.json()["version"] == 3
