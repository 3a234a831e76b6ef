"""Cleanup over HTTP: its status, manual and cron runs, purging, and rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from sessionclock.core.clock import ManualClock, to_iso
from sessionclock.http.app import create_app
from tests.conftest import Api, Backend, make_settings
from tests.helpers import (
    CLIENT,
    COMPANION,
    CRON_TOKEN,
    MINUTE_MS,
    T0_MS,
    booking,
)

ApiFactory = Callable[..., Awaitable[Api]]

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
STATUSES = {"scheduled", "waiting", "ready", "expired", "cancelled"}
CRON_URL = "/api/cron/cleanup-sessions"
CRON = {"Authorization": f"Bearer {CRON_TOKEN}"}


async def create(api: Api, session_id: str, **extra: Any) -> dict[str, Any]:
    response = await api.client.post(
        "/api/sessions", json=booking(id=session_id, **extra), headers=api.platform
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def both_ready(api: Api, session_id: str) -> None:
    for user in (CLIENT, COMPANION):
        response = await api.client.post(
            f"/api/sessions/{session_id}/ready",
            json={"ready": True},
            headers=api.as_user(user),
        )
        assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"


async def cleanup_status(api: Api) -> dict[str, Any]:
    response = await api.client.get("/api/sessions/cleanup", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def run_cleanup(api: Api) -> dict[str, Any]:
    response = await api.client.post("/api/sessions/cleanup", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def session(api: Api, session_id: str) -> dict[str, Any]:
    response = await api.client.get(f"/api/sessions/{session_id}", headers=api.platform)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_status_before_any_run_has_no_last_run(api: Api) -> None:
    """Before any cleanup, the status has a null last run and counts every status."""
    body = await cleanup_status(api)

    assert body["last_run"] is None
    assert "next_run" in body
    assert body["sessions"] == dict.fromkeys(STATUSES, 0)


async def test_status_counts_sessions_by_status(api: Api) -> None:
    """The status counts sessions by their status as stored."""
    await create(api, "b-far", starts_in_ms=2 * 60 * MINUTE_MS)
    await create(api, "b-near", starts_in_ms=2 * MINUTE_MS)
    await create(api, "b-gone")
    await api.client.post("/api/sessions/b-gone/cancel", headers=api.platform)

    body = await cleanup_status(api)

    assert body["sessions"] == {
        "scheduled": 1,
        "waiting": 1,
        "ready": 0,
        "expired": 0,
        "cancelled": 1,
    }


async def test_status_after_run_shows_last_run(api: Api) -> None:
    """After a manual run, the status shows that run with its counts and time."""
    api.clock.advance(1_234)
    ran = await run_cleanup(api)
    api.clock.advance(5_000)

    body = await cleanup_status(api)

    last = body["last_run"]
    assert last is not None
    assert last["ran_at"] == ran["ran_at"] == to_iso(T0_MS + 1_234)
    assert last["expired"] == ran["expired"] == 0
    assert last["purged"] == ran["purged"] == 0


async def test_status_after_second_run_shows_latest(api: Api) -> None:
    """The status's last run is the latest one, whichever endpoint ran it."""
    await run_cleanup(api)
    api.clock.advance(MINUTE_MS)
    cron = await api.client.post(CRON_URL, headers=CRON)
    assert cron.status_code == 200, cron.text

    body = await cleanup_status(api)

    assert body["last_run"]["ran_at"] == to_iso(T0_MS + MINUTE_MS)


@contextlib.asynccontextmanager
async def scheduled_app(
    tmp_path: Path, backend: Backend, *, run_scheduler: bool = True, **overrides: Any
) -> AsyncIterator[Api]:
    """An app on a manual clock whose scheduler runs, unlike the `api` fixture's."""
    settings = make_settings(
        tmp_path, backend.database_url, backend.redis_url, **overrides
    )
    clock = ManualClock(T0_MS)
    app = create_app(settings, clock=clock, run_scheduler=run_scheduler)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sessionclock.test"
        ) as client,
    ):
        yield Api(client=client, runtime=app.state.runtime, clock=clock)


async def test_status_next_run_with_scheduler(tmp_path: Path, backend: Backend) -> None:
    """With the scheduler running, the status names the next scheduled cleanup."""
    async with scheduled_app(tmp_path, backend, cleanup_interval_s=300) as api:
        for _ in range(100):
            if api.runtime.scheduler.next_cleanup_at_ms is not None:
                break
            await asyncio.sleep(0.01)

        body = await cleanup_status(api)

    assert body["next_run"] == to_iso(T0_MS + 300_000)
    assert body["last_run"] is None


async def test_run_expires_overdue_sessions(api: Api) -> None:
    """A run expires sessions past their end or no-show, and only those."""
    await create(api, "b-noshow")
    await create(api, "b-done")
    await create(api, "b-later", starts_in_ms=2 * 60 * MINUTE_MS)
    api.clock.advance(6 * MINUTE_MS)
    await both_ready(api, "b-done")
    versions = {
        session_id: (await session(api, session_id))["version"]
        for session_id in ("b-noshow", "b-done", "b-later")
    }
    api.clock.advance(35 * MINUTE_MS)

    result = await run_cleanup(api)

    assert result["expired"] == 2
    assert result["purged"] == 0
    assert result["ran_at"] == to_iso(T0_MS + 41 * MINUTE_MS)
    noshow = await session(api, "b-noshow")
    assert noshow["status"] == "expired"
    assert noshow["expired_reason"] == "no_show"
    assert sorted(noshow["absent"]) == ["client", "companion"]
    assert noshow["version"] > versions["b-noshow"]
    done = await session(api, "b-done")
    assert done["status"] == "expired"
    assert done["expired_reason"] == "time_up"
    assert done["version"] > versions["b-done"]
    later = await session(api, "b-later")
    assert later["status"] == "scheduled"
    assert later["version"] == versions["b-later"]


async def test_run_again_expires_nothing_more(api: Api) -> None:
    """A second run right after the first finds nothing left to expire."""
    await create(api, "b-1")
    api.clock.advance(41 * MINUTE_MS)
    first = await run_cleanup(api)
    version = (await session(api, "b-1"))["version"]

    second = await run_cleanup(api)

    assert first["expired"] == 1
    assert second["expired"] == 0
    assert (await session(api, "b-1"))["version"] == version


async def test_run_counts_in_status_after_expiry(api: Api) -> None:
    """After a run expires sessions, the status counts them as expired."""
    await create(api, "b-1")
    await create(api, "b-2")
    api.clock.advance(41 * MINUTE_MS)
    await run_cleanup(api)

    body = await cleanup_status(api)

    assert body["sessions"]["expired"] == 2
    assert body["sessions"]["scheduled"] == 0
    assert body["last_run"]["expired"] == 2


async def test_run_result_has_contract_fields(api: Api) -> None:
    """A run answers `{expired, purged, ran_at}`, ran_at in the contract's format."""
    result = await run_cleanup(api)

    assert {"expired", "purged", "ran_at"} <= result.keys()
    assert isinstance(result["expired"], int)
    assert isinstance(result["purged"], int)
    assert ISO_MS_Z.match(result["ran_at"]), result["ran_at"]


async def test_run_purges_records_older_than_retention(
    api_factory: ApiFactory, backend: Backend
) -> None:
    """A run removes runtime records of sessions ended over retention_s ago only."""
    api = await api_factory(backend, retention_s=60)
    await create(api, "b-old")
    await api.client.post("/api/sessions/b-old/cancel", headers=api.platform)
    api.clock.advance(30_000)
    await create(api, "b-recent")
    await api.client.post("/api/sessions/b-recent/cancel", headers=api.platform)
    await create(api, "b-live", starts_in_ms=2 * 60 * MINUTE_MS)
    api.clock.advance(45_000)
    repository = api.runtime.repository
    old_records = len(await repository.events("b-old"))
    recent_records = len(await repository.events("b-recent"))
    live_records = len(await repository.events("b-live"))
    assert old_records > 0
    assert recent_records > 0

    first = await run_cleanup(api)

    assert first["purged"] == old_records
    assert await repository.events("b-old") == []
    assert len(await repository.events("b-recent")) == recent_records
    assert len(await repository.events("b-live")) == live_records
    kept = await session(api, "b-old")
    assert kept["status"] == "cancelled"
    assert kept["expired_reason"] == "cancelled"

    api.clock.advance(MINUTE_MS)
    second = await run_cleanup(api)

    assert second["purged"] == recent_records
    assert await repository.events("b-recent") == []
    assert len(await repository.events("b-live")) == live_records
    assert (await session(api, "b-recent"))["status"] == "cancelled"


async def test_run_keeps_records_within_default_retention(api: Api) -> None:
    """With the default retention (3600 s) an hour-old ending is kept, then purged."""
    await create(api, "b-1")
    api.clock.advance(41 * MINUTE_MS)
    expired = await run_cleanup(api)
    records = len(await api.runtime.repository.events("b-1"))

    api.clock.advance(60 * MINUTE_MS)
    within = await run_cleanup(api)
    api.clock.advance(1)
    after = await run_cleanup(api)

    assert expired["expired"] == 1
    assert within["purged"] == 0
    assert after["purged"] == records
    assert (await session(api, "b-1"))["status"] == "expired"


async def test_cron_get_and_post_run_cleanup(api: Api) -> None:
    """The cron endpoint runs cleanup on GET and on POST with the cron bearer."""
    await create(api, "b-1")
    api.clock.advance(41 * MINUTE_MS)

    got = await api.client.get(CRON_URL, headers=CRON)
    posted = await api.client.post(CRON_URL, headers=CRON)

    assert got.status_code == 200, got.text
    assert posted.status_code == 200, posted.text
    assert got.json()["expired"] == 1
    assert posted.json()["expired"] == 0
    for body in (got.json(), posted.json()):
        assert {"expired", "purged", "ran_at"} <= body.keys()
        assert body["ran_at"] == to_iso(T0_MS + 41 * MINUTE_MS)
    assert (await session(api, "b-1"))["status"] == "expired"
    assert (await cleanup_status(api))["last_run"] is not None


async def test_cron_wrong_token_is_unauthorized(api: Api) -> None:
    """A missing or wrong cron bearer is a 401, and cleanup does not run."""
    await create(api, "b-1")
    api.clock.advance(41 * MINUTE_MS)

    for headers in (
        {},
        {"Authorization": f"Bearer {CRON_TOKEN}x"},
        {"Authorization": f"Bearer {CRON_TOKEN[:-1]}"},
        {"Authorization": f"Basic {CRON_TOKEN}"},
        api.platform,
        api.as_user(CLIENT),
    ):
        for method in ("GET", "POST"):
            response = await api.client.request(method, CRON_URL, headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert isinstance(response.json()["detail"], str)

    assert (await cleanup_status(api))["last_run"] is None
    stored = await api.runtime.repository.get("b-1")
    assert stored is not None
    assert stored.status.value == "scheduled"


async def test_cron_without_secret_is_not_found(
    api_factory: ApiFactory, backend: Backend
) -> None:
    """Without CRON_SECRET_TOKEN the cron endpoint is a 404, whatever the bearer."""
    api = await api_factory(backend, cron_secret_token=None)

    for headers in ({}, CRON, api.platform):
        for method in ("GET", "POST"):
            response = await api.client.request(method, CRON_URL, headers=headers)
            assert response.status_code == 404, (headers, response.text)
            assert "CRON_SECRET_TOKEN" in response.json()["detail"]

    assert (await cleanup_status(api))["last_run"] is None


async def test_run_third_call_in_a_minute_is_rate_limited(
    api_factory: ApiFactory, backend: Backend
) -> None:
    """With a limit of 2/minute the third manual run is a 429 with Retry-After."""
    api = await api_factory(backend, cleanup_rate_limit="2/minute")
    first = await run_cleanup(api)
    api.clock.advance(1_000)
    second = await run_cleanup(api)
    api.clock.advance(1_000)

    third = await api.client.post("/api/sessions/cleanup", headers=api.platform)

    assert first["ran_at"] != second["ran_at"]
    assert third.status_code == 429, third.text
    retry_after = third.headers["retry-after"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60
    assert isinstance(third.json()["detail"], str)
    # The refused call did not run: the last run is still the second.
    assert (await cleanup_status(api))["last_run"]["ran_at"] == second["ran_at"]


async def test_cron_third_call_in_a_minute_is_rate_limited(
    api_factory: ApiFactory, backend: Backend
) -> None:
    """With a limit of 2/minute the third cron run, GET or POST, is a 429."""
    api = await api_factory(backend, cleanup_rate_limit="2/minute")

    answers = [
        await api.client.get(CRON_URL, headers=CRON),
        await api.client.post(CRON_URL, headers=CRON),
        await api.client.get(CRON_URL, headers=CRON),
        await api.client.post(CRON_URL, headers=CRON),
    ]

    assert [answer.status_code for answer in answers] == [200, 200, 429, 429]
    for refused in answers[2:]:
        assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_rate_limit_shared_between_nodes_with_redis(
    api_factory: ApiFactory, backend: Backend
) -> None:
    """Two nodes share the cleanup limit through Redis, and keep their own without."""
    node_a = await api_factory(backend, cleanup_rate_limit="2/minute")
    node_b = await api_factory(backend, cleanup_rate_limit="2/minute")
    await run_cleanup(node_a)
    await run_cleanup(node_a)

    answer = await node_b.client.post("/api/sessions/cleanup", headers=node_b.platform)

    expected = 429 if backend.redis_url else 200
    assert answer.status_code == expected, answer.text


async def redis_connections(redis_url: str) -> int:
    """How many clients other than the one asking are connected to the test Redis."""
    async with Redis.from_url(redis_url) as probe:
        return len(await probe.client_list()) - 1


@pytest.mark.redis
async def test_shutdown_closes_rate_limit_connection(
    tmp_path: Path, sqlite_url: str, redis_url: str
) -> None:
    """A node that stops closes every Redis connection it opened, the limiter's too."""
    backend = Backend("sqlite+redis", sqlite_url, redis_url)
    before = await redis_connections(redis_url)
    async with scheduled_app(tmp_path, backend, run_scheduler=False) as api:
        await run_cleanup(api)
        assert await redis_connections(redis_url) > before

    for _ in range(50):
        left = await redis_connections(redis_url)
        if left == before:
            break
        await asyncio.sleep(0.05)
    assert left == before, f"{left - before} Redis connection(s) left open"
