"""Outgoing webhooks end to end: changes, the outbox, signed deliveries, retries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from sessionclock.core import machine
from sessionclock.core.session import Role
from tests.conftest import Api, Backend
from tests.helpers import CLIENT, COMPANION, MINUTE_MS, T0_MS, booking
from tests.webhooks.receiver import Receiver

ApiFactory = Callable[..., Awaitable[Api]]
SECRET = "test-webhook-secret-" + "w" * 32


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A platform's webhook receiver on a free port, closed after the test."""
    served = Receiver(SECRET)
    yield served
    served.close()


async def _webhook_api(
    api_factory: ApiFactory, backend: Backend, receiver: Receiver, **extra: Any
) -> Api:
    api: Api = await api_factory(
        backend, webhook_url=receiver.url, webhook_secret=SECRET, **extra
    )
    return api


async def _create(api: Api, session_id: str, **extra: Any) -> None:
    response = await api.client.post(
        "/api/sessions", json=booking(id=session_id, **extra), headers=api.platform
    )
    assert response.status_code == 201, response.text


async def _ready(api: Api, session_id: str, user_id: str) -> dict[str, Any]:
    response = await api.client.post(
        f"/api/sessions/{session_id}/ready",
        json={"ready": True},
        headers=api.as_user(user_id),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_session_changes_reach_the_webhook_signed(
    api_factory: ApiFactory, backend: Backend, receiver: Receiver
) -> None:
    """Lobby, both marks, the call and its end arrive signed, once each, in order."""
    api = await _webhook_api(api_factory, backend, receiver)
    await _create(api, "w-1", booking_status="pending")
    api.clock.advance(6 * MINUTE_MS)
    await _ready(api, "w-1", CLIENT)
    await _ready(api, "w-1", COMPANION)

    # Written with the changes, before anything was sent.
    pending = await api.runtime.outbox.repository.for_session("w-1")
    assert {d.status.value for d in pending} == {"pending"}
    result = await api.runtime.outbox.deliver_due()
    assert (result.delivered, result.retried) == (4, 0)

    api.clock.advance(40 * MINUTE_MS)
    ended = await api.client.get("/api/sessions/w-1", headers=api.platform)
    assert ended.json()["status"] == "expired"
    await api.runtime.outbox.deliver_due()

    got = receiver.accepted()
    assert [item.type for item in got] == [
        "lobby_opened",
        "participant_ready",
        "participant_ready",
        "ready",
        "expired",
    ]
    assert all(item.signature_ok for item in got)
    assert all(item.timestamp_s * 1000 <= api.clock.now_ms() for item in got)
    assert len({item.event_id for item in got}) == len(got)
    assert all(item.body["id"] == item.event_id for item in got)
    assert got[1].body["data"] == {"role": "client", "user_id": CLIENT}
    assert got[2].body["data"] == {"role": "companion", "user_id": COMPANION}
    assert got[3].body["session"]["status"] == "ready"
    assert got[4].body["data"]["reason"] == "time_up"
    assert got[4].body["data"]["outcome"] == "finished"


async def test_no_show_found_by_the_sweep_names_who_was_absent(
    api_factory: ApiFactory, backend: Backend, receiver: Receiver
) -> None:
    """A no-show expired in bulk by the sweep still sends `expired` with the absent."""
    api = await _webhook_api(api_factory, backend, receiver)
    await _create(api, "w-2", starts_in_ms=2 * MINUTE_MS)
    await _ready(api, "w-2", CLIENT)
    api.clock.advance(13 * MINUTE_MS)
    swept = await api.runtime.service.sweep()
    assert swept.expired == 1

    await api.runtime.outbox.deliver_due()
    expired = [item for item in receiver.accepted() if item.type == "expired"]
    assert len(expired) == 1
    assert expired[0].signature_ok
    assert expired[0].body["data"] == {
        "reason": "no_show",
        "absent": ["companion"],
        "absent_user_ids": [COMPANION],
        "outcome": "no_show_companion",
    }


async def test_warning_and_cancel_reach_the_webhook(
    api_factory: ApiFactory, backend: Backend, receiver: Receiver
) -> None:
    """A warning fires once into the outbox, and a cancellation follows it."""
    api = await _webhook_api(api_factory, backend, receiver)
    await _create(api, "w-3", starts_in_ms=2 * MINUTE_MS, duration_s=600)
    api.clock.advance(8 * MINUTE_MS)
    assert await api.runtime.service.warn("w-3", 300)
    assert not await api.runtime.service.warn("w-3", 300)
    response = await api.client.post("/api/sessions/w-3/cancel", headers=api.platform)
    assert response.status_code == 200, response.text

    await api.runtime.outbox.deliver_due()
    types = [item.type for item in receiver.accepted()]
    assert types == ["lobby_opened", "warning", "cancelled"]
    warning = receiver.accepted()[1]
    assert warning.body["data"] == {"remaining_s": 300}


async def test_failed_delivery_waits_visibly_then_lands(
    api_factory: ApiFactory, receiver: Receiver, sqlite_url: str
) -> None:
    """A refusing receiver leaves deliveries pending (shown) until a retry lands."""
    api = await _webhook_api(api_factory, Backend("sqlite", sqlite_url), receiver)
    receiver.fail_with = 503
    await _create(api, "w-4", starts_in_ms=2 * MINUTE_MS)

    first = await api.runtime.outbox.deliver_due()
    assert (first.delivered, first.retried) == (0, 1)
    status = await api.client.get("/api/sessions/cleanup", headers=api.platform)
    assert status.json()["outbox"]["webhook"] == {
        "pending": 1,
        "delivered": 0,
        "failed": 0,
    }
    debug = (await api.client.get("/api/debug/state")).json()
    [waiting] = debug["outbox"]["undelivered"]
    assert waiting["type"] == "lobby_opened"
    assert waiting["attempts"] == 1
    assert "got 503" in waiting["last_error"]
    metrics = (await api.client.get("/metrics")).text
    assert (
        'sessionclock_outbox_deliveries{status="pending",target="webhook"} 1.0'
        in metrics
    )

    # Not due again before its backoff ends, whatever the receiver does.
    receiver.fail_with = None
    assert (await api.runtime.outbox.deliver_due()).delivered == 0
    api.clock.advance(1_000)
    assert (await api.runtime.outbox.deliver_due()).delivered == 1
    assert [item.answered for item in receiver.received] == [503, 204]
    assert receiver.received[0].event_id == receiver.received[1].event_id


async def test_delivery_fails_for_good_after_the_last_attempt(
    api_factory: ApiFactory, receiver: Receiver, sqlite_url: str
) -> None:
    """After its last attempt a delivery is failed, kept and counted as failed."""
    api = await _webhook_api(
        api_factory, Backend("sqlite", sqlite_url), receiver, outbox_max_attempts=2
    )
    receiver.fail_with = 500
    await _create(api, "w-5", starts_in_ms=2 * MINUTE_MS)
    assert (await api.runtime.outbox.deliver_due()).retried == 1
    api.clock.advance(60_000)
    assert (await api.runtime.outbox.deliver_due()).failed == 1
    api.clock.advance(60 * MINUTE_MS)
    assert len(receiver.received) == 2
    status = await api.client.get("/api/sessions/cleanup", headers=api.platform)
    assert status.json()["outbox"]["webhook"]["failed"] == 1
    debug = (await api.client.get("/api/debug/state")).json()
    assert debug["outbox"]["undelivered"][0]["status"] == "failed"


async def test_no_webhook_url_writes_no_outbox_rows(
    api_factory: ApiFactory, sqlite_url: str
) -> None:
    """With no webhook URL and local bookings, changes leave the outbox empty."""
    api: Api = await api_factory(Backend("sqlite", sqlite_url))
    await _create(api, "w-6", starts_in_ms=2 * MINUTE_MS)
    await _ready(api, "w-6", COMPANION)
    assert await api.runtime.outbox.repository.for_session("w-6") == []
    assert api.clock.now_ms() == T0_MS


async def test_change_that_loses_its_race_writes_no_notice(
    api_factory: ApiFactory, backend: Backend, receiver: Receiver
) -> None:
    """A stale write writes neither the change nor its notices: one transaction."""
    api = await _webhook_api(api_factory, backend, receiver)
    await _create(api, "w-7", starts_in_ms=2 * MINUTE_MS)
    stale = await api.runtime.repository.get("w-7")
    assert stale is not None
    await _ready(api, "w-7", CLIENT)
    before = await api.runtime.outbox.repository.for_session("w-7")

    change = machine.mark_ready(
        stale, Role.COMPANION, True, api.clock.now_ms(), api.runtime.service.timing
    )
    assert not await api.runtime.repository.replace(change, api.clock.now_ms())
    assert await api.runtime.outbox.repository.for_session("w-7") == before


async def test_cleanup_purges_delivered_notices_and_keeps_failed_ones(
    api_factory: ApiFactory, receiver: Receiver, sqlite_url: str
) -> None:
    """Cleanup drops deliveries that landed past the retention; failed ones stay."""
    api = await _webhook_api(
        api_factory,
        Backend("sqlite", sqlite_url),
        receiver,
        retention_s=60,
        outbox_max_attempts=1,
    )
    await _create(api, "w-8", starts_in_ms=2 * MINUTE_MS)
    await api.runtime.outbox.deliver_due()
    receiver.fail_with = 500
    response = await api.client.post("/api/sessions/w-8/cancel", headers=api.platform)
    assert response.status_code == 200
    await api.runtime.outbox.deliver_due()

    api.clock.advance(2 * MINUTE_MS)
    await api.runtime.service.cleanup("manual")
    left = await api.runtime.outbox.repository.for_session("w-8")
    assert [(d.type, d.status.value) for d in left] == [("cancelled", "failed")]
