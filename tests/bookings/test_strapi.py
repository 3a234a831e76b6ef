"""Strapi as the booking source, against a real Strapi 5 (tests/strapi/app)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs
from websockets.asyncio.client import connect

from sessionclock.core.clock import SystemClock, to_epoch_ms, to_iso
from tests.bookings.conftest import (
    SPANISH_STATUSES,
    ApiFactory,
    Bookings,
    People,
    wait_for,
)
from tests.bookings.strapi_server import StrapiServer
from tests.conftest import Api, Backend
from tests.helpers import API_KEY, running_server, server_env

pytestmark = [pytest.mark.strapi, pytest.mark.timeout(300)]

MINUTE_S = 60


async def _sync(api: Api) -> dict[str, Any]:
    response = await api.client.post("/api/bookings/sync", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _session(api: Api, session_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/api/sessions/{session_id}", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _ready_with_jwt(api: Api, session_id: str, jwt: str) -> dict[str, Any]:
    response = await api.client.post(
        f"/api/sessions/{session_id}/ready",
        json={"ready": True},
        headers={"Authorization": f"Bearer {jwt}"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_sync_turns_strapi_bookings_into_sessions(
    strapi_api: Api, bookings: Bookings, people: People
) -> None:
    """A booking made in Strapi is a session after a sync, with its users and times."""
    entry = bookings.create(starts_in_s=20 * MINUTE_S)

    result = await _sync(strapi_api)
    assert result["source"] == "strapi"
    assert result["applied"] >= 1

    session = await _session(strapi_api, entry["documentId"])
    assert session["status"] == "scheduled"
    assert session["booking_status"] == "pending"
    assert session["starts_at"] == entry["startsAt"]
    assert session["ends_at"] == entry["endsAt"]
    assert session["participants"]["client"]["user_id"] == str(people.client.id)
    assert session["participants"]["companion"]["user_id"] == str(people.companion.id)

    # A second pass reads only what changed since, and changes nothing.
    again = await _sync(strapi_api)
    assert again["applied"] == 0

    status = await strapi_api.client.get(
        "/api/sessions/cleanup", headers=strapi_api.platform
    )
    report = status.json()["bookings"]
    assert report["source"] == "strapi"
    assert report["last_sync"] == {"seen": again["seen"], "applied": 0, "skipped": 0}


async def test_webhook_follows_create_reschedule_and_delete(
    served: Api, strapi: StrapiServer, bookings: Bookings
) -> None:
    """Strapi's own webhook creates, moves and cancels the session without a sync."""
    entry = bookings.create(starts_in_s=30 * MINUTE_S)
    session_id = entry["documentId"]

    async def exists() -> bool:
        return await served.runtime.repository.get(session_id) is not None

    await wait_for(exists)
    first = await _session(served, session_id)
    assert first["ends_at"] == entry["endsAt"]

    moved = strapi.update_booking(session_id, endsAt=to_iso_plus(entry["endsAt"], 15))

    async def rescheduled() -> bool:
        stored = await served.runtime.repository.get(session_id)
        return stored is not None and to_iso(stored.ends_at_ms) == moved["endsAt"]

    await wait_for(rescheduled)

    strapi.delete_booking(session_id)

    async def cancelled() -> bool:
        stored = await served.runtime.repository.get(session_id)
        return stored is not None and stored.status.value == "cancelled"

    await wait_for(cancelled)


async def test_webhook_with_a_wrong_secret_is_refused(strapi_api: Api) -> None:
    """A call to the webhook without the shared secret changes nothing (401)."""
    response = await strapi_api.client.post(
        "/api/bookings/webhook",
        content=b'{"event":"entry.delete","model":"booking","entry":{"documentId":"x"}}',
        headers={"X-Sessionclock-Secret": "not-the-secret"},
    )
    assert response.status_code == 401
    missing = await strapi_api.client.post("/api/bookings/webhook", content=b"{}")
    assert missing.status_code == 401


async def test_cancelled_in_strapi_cancels_the_session(
    strapi_api: Api, strapi: StrapiServer, bookings: Bookings
) -> None:
    """A booking whose status becomes cancelled in Strapi cancels its session."""
    entry = bookings.create(starts_in_s=20 * MINUTE_S)
    await _sync(strapi_api)
    strapi.update_booking(entry["documentId"], bookingStatus="cancelada")
    await _sync(strapi_api)
    session = await _session(strapi_api, entry["documentId"])
    assert session["status"] == "cancelled"
    assert session["expired_reason"] == "cancelled"


async def test_companion_ready_confirms_the_pending_booking_in_strapi(
    strapi_api: Api, strapi: StrapiServer, bookings: Bookings, people: People
) -> None:
    """The companion's ready mark (with its Strapi JWT) writes `confirmada` back."""
    entry = bookings.create(starts_in_s=2 * MINUTE_S)
    await _sync(strapi_api)

    marked = await _ready_with_jwt(
        strapi_api, entry["documentId"], people.companion.jwt
    )
    assert marked["booking_status"] == "confirmed"
    assert strapi.booking(entry["documentId"])["bookingStatus"] == "pendiente"

    delivered = await strapi_api.runtime.outbox.deliver_due()
    assert delivered.delivered == 1
    assert strapi.booking(entry["documentId"])["bookingStatus"] == "confirmada"

    # The write-back's own update, synced again, changes nothing here.
    assert (await _sync(strapi_api))["applied"] == 0


async def test_outcome_is_written_back_when_the_session_ends(
    strapi_api: Api, strapi: StrapiServer, bookings: Bookings, people: People
) -> None:
    """A finished session and a no-show each write their mapped outcome to Strapi."""
    finished = bookings.create(starts_in_s=2 * MINUTE_S, bookingStatus="confirmada")
    no_show = bookings.create(starts_in_s=2 * MINUTE_S, bookingStatus="confirmada")
    await _sync(strapi_api)

    await _ready_with_jwt(strapi_api, finished["documentId"], people.client.jwt)
    await _ready_with_jwt(strapi_api, finished["documentId"], people.companion.jwt)
    await _ready_with_jwt(strapi_api, no_show["documentId"], people.client.jwt)

    strapi_api.clock.advance(33 * MINUTE_S * 1000)
    assert (await _session(strapi_api, finished["documentId"]))["status"] == "expired"
    assert (await _session(strapi_api, no_show["documentId"]))["absent"] == [
        "companion"
    ]

    await strapi_api.runtime.outbox.deliver_due()
    assert strapi.booking(finished["documentId"])["outcome"] == "completada"
    assert strapi.booking(no_show["documentId"])["outcome"] == "ausente_acompanante"


async def test_strapi_outage_delays_the_write_back_without_losing_it(
    strapi_api: Api, strapi: StrapiServer, bookings: Bookings, people: People
) -> None:
    """With Strapi down the confirmation waits, visibly, and lands once it is back."""
    entry = bookings.create(starts_in_s=2 * MINUTE_S)
    await _sync(strapi_api)
    await _ready_with_jwt(strapi_api, entry["documentId"], people.companion.jwt)

    strapi.stop()
    try:
        down = await strapi_api.runtime.outbox.deliver_due()
        assert (down.delivered, down.retried) == (0, 1)
        status = await strapi_api.client.get(
            "/api/sessions/cleanup", headers=strapi_api.platform
        )
        assert status.json()["outbox"]["booking_source"]["pending"] == 1
        strapi_api.clock.advance(60_000)
        still = await strapi_api.runtime.outbox.deliver_due()
        assert (still.delivered, still.retried) == (0, 1)
    finally:
        strapi.start()

    strapi_api.clock.advance(60_000)
    back = await strapi_api.runtime.outbox.deliver_due()
    assert back.delivered == 1
    assert strapi.booking(entry["documentId"])["bookingStatus"] == "confirmada"
    [delivery] = await strapi_api.runtime.outbox.repository.for_session(
        entry["documentId"]
    )
    assert delivery.status.value == "delivered"
    assert delivery.attempts == 3


async def test_strapi_jwt_opens_only_its_users_sessions(
    strapi_api: Api, bookings: Bookings, people: People
) -> None:
    """A Strapi JWT of a participant opens the session; another user's does not."""
    entry = bookings.create(starts_in_s=20 * MINUTE_S)
    await _sync(strapi_api)
    path = f"/api/sessions/{entry['documentId']}"

    with capture_logs() as first:
        own = await strapi_api.client.get(
            path, headers={"Authorization": f"Bearer {people.client.jwt}"}
        )
    assert own.status_code == 200, own.text
    checked = [line for line in first if line["event"] == "strapi.jwt_checked"]
    assert [line["user_id"] for line in checked] == [str(people.client.id)]
    assert own.json()["participants"]["client"]["user_id"] == str(people.client.id)

    # Strapi's answer is remembered: the same JWT again does not ask it.
    with capture_logs() as logs:
        again = await strapi_api.client.get(
            path, headers={"Authorization": f"Bearer {people.client.jwt}"}
        )
    assert again.status_code == 200
    assert not [line for line in logs if line["event"] == "strapi.jwt_checked"]

    other = await strapi_api.client.get(
        path, headers={"Authorization": f"Bearer {people.stranger.jwt}"}
    )
    assert other.status_code == 404
    assert entry["startsAt"] not in other.text

    forged = people.client.jwt[:-4] + "AAAA"
    refused = await strapi_api.client.get(
        path, headers={"Authorization": f"Bearer {forged}"}
    )
    assert refused.status_code == 401

    # A token of sessionclock's own that expired is refused here, never sent on.
    expired = strapi_api.runtime.issuer.issue(str(people.client.id), 1).token
    strapi_api.clock.advance(2_000)
    with capture_logs() as logs:
        late = await strapi_api.client.get(
            path, headers={"Authorization": f"Bearer {expired}"}
        )
    assert late.status_code == 401
    assert "expired" in late.json()["detail"]
    assert not [line for line in logs if line["event"] == "strapi.jwt_checked"]

    # Neither is anything that cannot be a users-permissions JWT.
    with capture_logs() as logs:
        for garbage in ("a.b.c", "not-a-token", people.client.jwt.split(".")[0]):
            refused = await strapi_api.client.get(
                path, headers={"Authorization": f"Bearer {garbage}"}
            )
            assert refused.status_code == 401
    assert not [line for line in logs if line["event"] == "strapi.jwt_checked"]

    mine = await strapi_api.client.get(
        "/api/me/sessions", params={"access_token": people.companion.jwt}
    )
    assert mine.status_code == 200
    assert entry["documentId"] in [s["id"] for s in mine.json()["sessions"]]


async def test_malformed_strapi_bookings_are_skipped_with_a_log_line(
    strapi_api: Api, bookings: Bookings, people: People
) -> None:
    """Bookings that cannot be sessions are skipped, each with a log line and reason."""
    good = bookings.create(starts_in_s=20 * MINUTE_S)
    backwards = bookings.create(starts_in_s=20 * MINUTE_S, duration_s=-600)
    alone = bookings.create(starts_in_s=20 * MINUTE_S, companion=None)
    odd = bookings.create(starts_in_s=20 * MINUTE_S, endsAt=None)

    with capture_logs() as logs:
        result = await _sync(strapi_api)

    assert result["skipped"] >= 3
    skipped = {
        line["entry_id"]: line["reason"]
        for line in logs
        if line["event"] == "strapi.entry_skipped"
    }
    assert "expected a session of" in skipped[backwards["documentId"]]
    assert "companion: expected a user" in skipped[alone["documentId"]]
    assert "expected an end" in skipped[odd["documentId"]]
    assert good["documentId"] not in skipped
    assert (await _session(strapi_api, good["documentId"]))["status"] == "scheduled"
    for entry in (backwards, alone, odd):
        missing = await strapi_api.client.get(
            f"/api/sessions/{entry['documentId']}", headers=strapi_api.platform
        )
        assert missing.status_code == 404


def to_iso_plus(iso: str, minutes: int) -> str:
    """An ISO time moved by some minutes, in the contract's format."""
    moment = datetime.fromisoformat(iso) + timedelta(minutes=minutes)
    return to_iso(to_epoch_ms(moment))


@pytest.mark.slow
async def test_served_node_syncs_and_writes_back_on_its_own(
    strapi: StrapiServer, bookings: Bookings, people: People, tmp_path: Path
) -> None:
    """`sessionclock serve` on Strapi syncs on schedule, takes a JWT on its socket,
    and its outbox worker confirms the booking without being asked."""
    env = server_env(
        f"sqlite+aiosqlite:///{tmp_path / 'served.db'}",
        STRAPI_URL=strapi.url,
        STRAPI_API_TOKEN=strapi.token,
        SESSIONCLOCK_STRAPI_STATUS_VALUES=SPANISH_STATUSES,
        SESSIONCLOCK_STRAPI_SYNC_INTERVAL_S="0.5",
        SESSIONCLOCK_OUTBOX_INTERVAL_S="0.5",
    )
    entry = bookings.create(starts_in_s=2 * MINUTE_S)
    session_id = entry["documentId"]
    with running_server(env, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:

            async def synced() -> bool:
                found = await http.get(
                    f"/api/sessions/{session_id}",
                    headers={"Authorization": f"Bearer {API_KEY}"},
                )
                return found.status_code == 200

            await wait_for(synced)

            socket_url = (
                f"ws://127.0.0.1:{server.port}/api/sessions/{session_id}/ws"
                f"?access_token={people.companion.jwt}"
            )
            async with connect(socket_url) as socket:
                first = json.loads(await socket.recv())
                assert first["type"] == "snapshot"
                assert first["session"]["booking_status"] == "pending"
                await socket.send(json.dumps({"type": "ready", "ready": True}))
                while True:
                    message = json.loads(await socket.recv())
                    if message["type"] == "snapshot":
                        break
                assert message["session"]["booking_status"] == "confirmed"

            async def confirmed() -> bool:
                status: str = strapi.booking(session_id)["bookingStatus"]
                return status == "confirmada"

            await wait_for(confirmed)
    assert "strapi.written_back" in server.log()


async def test_plain_fields_and_a_duration_are_read_from_strapi(
    api_factory: ApiFactory,
    sqlite_url: str,
    strapi_settings: dict[str, Any],
    bookings: Bookings,
) -> None:
    """Participants in plain text fields and a duration in minutes make a session."""
    api: Api = await api_factory(
        Backend("sqlite", sqlite_url),
        **strapi_settings,
        strapi_participants="field",
        strapi_client_field="clientRef",
        strapi_companion_field="companionRef",
        strapi_ends_at_field="",
        strapi_duration_field="durationMinutes",
    )
    api.clock.set(SystemClock().now_ms())
    entry = bookings.create(
        starts_in_s=20 * MINUTE_S,
        endsAt=None,
        durationMinutes=45,
        client=None,
        companion=None,
        clientRef="crm-client-7",
        companionRef="crm-companion-9",
    )
    await _sync(api)
    session = await _session(api, entry["documentId"])
    assert session["participants"]["client"]["user_id"] == "crm-client-7"
    assert session["participants"]["companion"]["user_id"] == "crm-companion-9"
    starts_at_ms = to_epoch_ms(datetime.fromisoformat(entry["startsAt"]))
    assert session["ends_at"] == to_iso(starts_at_ms + 45 * MINUTE_S * 1000)


async def test_users_named_by_document_id_match_their_jwts(
    api_factory: ApiFactory,
    sqlite_url: str,
    strapi_settings: dict[str, Any],
    bookings: Bookings,
    people: People,
) -> None:
    """With user_key documentId, sessions and JWTs both name users by documentId."""
    api: Api = await api_factory(
        Backend("sqlite", sqlite_url), **strapi_settings, strapi_user_key="documentId"
    )
    api.clock.set(SystemClock().now_ms())
    entry = bookings.create(starts_in_s=20 * MINUTE_S)
    await _sync(api)
    session = await _session(api, entry["documentId"])
    assert session["participants"]["client"]["user_id"] == people.client.document_id

    me = await api.client.get(
        "/api/me", headers={"Authorization": f"Bearer {people.companion.jwt}"}
    )
    assert me.json() == {"user_id": people.companion.document_id}
    own = await api.client.get(
        f"/api/sessions/{entry['documentId']}",
        headers={"Authorization": f"Bearer {people.companion.jwt}"},
    )
    assert own.status_code == 200
