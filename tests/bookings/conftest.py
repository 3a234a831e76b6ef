"""A real Strapi 5 for the booking tests, and sessionclock apps that read from it.

Strapi runs once per test session (npm ci first, only when tests/strapi/app's lock
file changed); each test gets its own sessionclock database and deletes the
bookings it made. Without npm or Node.js the tests skip, and under CI they fail.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from sessionclock.core.clock import SystemClock, to_iso
from tests.bookings.strapi_server import (
    INSTALL_SCRIPT,
    WEBHOOK_SECRET,
    StrapiServer,
    StrapiUser,
)
from tests.conftest import Api, Backend, unavailable
from tests.helpers import free_port

ApiFactory = Callable[..., Awaitable[Api]]

SPANISH_STATUSES = "pendiente=pending,confirmada=confirmed,cancelada=cancelled"
OUTCOMES = (
    "finished=completada,no_show_client=ausente_cliente,"
    "no_show_companion=ausente_acompanante,no_show_both=ausentes,cancelled=cancelada"
)


@pytest.fixture(scope="session")
def strapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StrapiServer]:
    """The test Strapi app, installed if needed, on a free port for the session."""
    try:
        subprocess.run([str(INSTALL_SCRIPT)], check=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as error:
        unavailable("Strapi (scripts/install-strapi)", error)
    server = StrapiServer(tmp_path_factory.mktemp("strapi"), webhook_port=free_port())
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        unavailable("Strapi", error)
    yield server
    server.stop()


@dataclass(frozen=True)
class People:
    client: StrapiUser
    companion: StrapiUser
    stranger: StrapiUser


@pytest.fixture(scope="session")
def people(strapi: StrapiServer) -> People:
    """Three users-permissions users: a client, a companion and a stranger."""
    suffix = uuid.uuid4().hex[:6]
    return People(
        strapi.register(f"ana{suffix}"),
        strapi.register(f"bea{suffix}"),
        strapi.register(f"cid{suffix}"),
    )


class Bookings:
    """Creates bookings in Strapi for one test and deletes them afterwards."""

    def __init__(self, strapi: StrapiServer, people: People) -> None:
        self._strapi = strapi
        self._people = people
        self.created: list[str] = []

    def create(
        self, starts_in_s: int, duration_s: int = 1800, **fields: Any
    ) -> dict[str, Any]:
        now_ms = SystemClock().now_ms()
        starts_at_ms = now_ms + starts_in_s * 1000
        values: dict[str, Any] = {
            "startsAt": to_iso(starts_at_ms),
            "endsAt": to_iso(starts_at_ms + duration_s * 1000),
            "bookingStatus": "pendiente",
            "client": self._people.client.id,
            "companion": self._people.companion.id,
        }
        values.update(fields)
        entry = self._strapi.create_booking(**values)
        self.created.append(entry["documentId"])
        return entry

    def cleanup(self) -> None:
        for document_id in self.created:
            self._strapi.delete_booking(document_id)


@pytest.fixture
def bookings(strapi: StrapiServer, people: People) -> Iterator[Bookings]:
    made = Bookings(strapi, people)
    yield made
    made.cleanup()


@pytest.fixture
def strapi_settings(strapi: StrapiServer) -> dict[str, Any]:
    """Settings that read bookings from the test Strapi, in its Spanish values."""
    return {
        "strapi_url": strapi.url,
        "strapi_api_token": strapi.token,
        "strapi_status_values": SPANISH_STATUSES,
        "strapi_outcome_field": "outcome",
        "strapi_outcome_values": OUTCOMES,
        "strapi_webhook_secret": WEBHOOK_SECRET,
        "strapi_timeout_s": 5,
    }


@pytest.fixture
async def strapi_api(
    api_factory: ApiFactory, sqlite_url: str, strapi_settings: dict[str, Any]
) -> Api:
    """sessionclock on SQLite with Strapi as its booking source, its clock at now."""
    api: Api = await api_factory(Backend("sqlite", sqlite_url), **strapi_settings)
    # No background task has run yet: the clock can still start at the real now.
    api.clock.set(SystemClock().now_ms())
    return api


async def wait_for(check: Callable[[], Awaitable[bool]], timeout_s: float = 15) -> None:
    """Poll until a condition holds; Strapi's webhooks arrive on their own time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


@pytest.fixture
async def served(strapi: StrapiServer, strapi_api: Api) -> AsyncIterator[Api]:
    """The Strapi-backed app also on the port Strapi's webhook calls."""
    config = uvicorn.Config(
        strapi_api.app,
        host="127.0.0.1",
        port=strapi.webhook_port,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: _true(server.started), timeout_s=10)
    yield strapi_api
    server.should_exit = True
    await task


async def _true(value: bool) -> bool:
    return value
