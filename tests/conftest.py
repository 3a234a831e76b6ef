"""Fixtures that give tests real databases, Redis, apps and server processes.

PostgreSQL and Redis are the machine's local servers (or the URLs in
SESSIONCLOCK_TEST_POSTGRES_URL and SESSIONCLOCK_TEST_REDIS_URL). Each test gets a
database of its own and drops it afterwards. Without CI a missing server skips the
tests that need it; under CI (CI=true) it fails them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from sessionclock.core.clock import ManualClock
from sessionclock.http.app import create_app
from sessionclock.runtime import Runtime
from sessionclock.settings import Settings, load_settings
from tests.helpers import (
    API_KEY,
    CRON_TOKEN,
    SECRET_KEY,
    T0_MS,
)

UNDER_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get(
    "SESSIONCLOCK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get(
    "SESSIONCLOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"
)


def unavailable(what: str, error: BaseException) -> None:
    """Skip a test whose service is down, but fail it under CI, where it must run."""
    message = f"{what} is not reachable: {error}"
    if UNDER_CI:
        pytest.fail(f"{message} (CI needs it; .ci/run should have started it)")
    pytest.skip(message)


T = TypeVar("T")


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, even beside a running loop
    (Playwright's sync API keeps one in the main thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    async def check() -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        await connection.close()

    try:
        run_async(check())
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        unavailable("PostgreSQL", error)
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped after it."""
    name = f"sessionclock_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(postgres_admin_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    run_async(admin(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url.rsplit("/", 1)[0]
    yield f"{base.replace('postgresql://', 'postgresql+asyncpg://', 1)}/{name}"
    run_async(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before and after the test."""

    async def flush() -> None:
        client = Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=5)
        try:
            await client.flushdb()
        finally:
            await client.aclose()

    try:
        run_async(flush())
    except (OSError, ConnectionError, TimeoutError) as error:
        unavailable("Redis", error)
    except Exception as error:  # redis-py wraps refusals in its own errors
        unavailable("Redis", error)
    yield REDIS_TEST_URL
    run_async(flush())


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'sessionclock.db'}"


BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("postgresql+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


@dataclass
class Backend:
    """Where a test's state lives: a database URL and maybe Redis."""

    name: str
    database_url: str
    redis_url: str | None = None


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """Run the test on SQLite, on PostgreSQL, and on PostgreSQL with Redis."""
    return make_backend(request)


def make_backend(request: pytest.FixtureRequest) -> Backend:
    """The backend a parametrized `backend` fixture names, with its services."""
    if request.param == "sqlite":
        return Backend("sqlite", request.getfixturevalue("sqlite_url"))
    database_url = request.getfixturevalue("postgres_url")
    if request.param == "postgresql+redis":
        return Backend(
            request.param, database_url, request.getfixturevalue("redis_url")
        )
    return Backend(request.param, database_url)


def make_settings(
    tmp_path: Path, database_url: str, redis_url: str | None = None, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "secret_key": SECRET_KEY,
        "api_key": API_KEY,
        "cron_secret_token": CRON_TOKEN,
        "dev_secrets_file": tmp_path / "secrets.json",
        "node_name": "test-node",
    }
    values.update(overrides)
    return load_settings(**values)


@dataclass
class Api:
    """An app on a manual clock and an HTTP client that talks to it in process."""

    client: httpx.AsyncClient
    runtime: Runtime
    clock: ManualClock
    platform: dict[str, str] = field(
        default_factory=lambda: {"Authorization": f"Bearer {API_KEY}"}
    )
    app: Any = None

    def as_user(self, user_id: str, ttl_s: int = 3600) -> dict[str, str]:
        token = self.runtime.issuer.issue(user_id, ttl_s).token
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api_factory(tmp_path: Path) -> AsyncIterator[Any]:
    """Build apps on a given backend; all are shut down after the test."""
    stack: list[Any] = []

    async def build(backend: Backend, **overrides: Any) -> Api:
        settings = make_settings(
            tmp_path, backend.database_url, backend.redis_url, **overrides
        )
        clock = ManualClock(T0_MS)
        app = create_app(settings, clock=clock, run_scheduler=False)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        stack.append(lifespan)
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(
            transport=transport, base_url="http://sessionclock.test"
        )
        stack.append(client)
        return Api(client=client, runtime=app.state.runtime, clock=clock, app=app)

    yield build
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)


@pytest.fixture
async def api(api_factory: Any, backend: Backend) -> Api:
    """The app on each backend, with a manual clock at T0 and no background timers."""
    built: Api = await api_factory(backend)
    return built
