"""For operators and clients: liveness, readiness, metrics, the time, and the docs."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from sessionclock.core.clock import to_iso
from tests.conftest import Api, Backend
from tests.helpers import CLIENT, MINUTE_MS, T0_MS, booking, free_port

ApiFactory = Callable[..., Awaitable[Api]]

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# The contract's HTTP paths and methods; a path parameter's name is not part of it.
CONTRACT_OPERATIONS = {
    ("post", "/api/sessions"),
    ("put", "/api/sessions/{}"),
    ("get", "/api/sessions/{}"),
    ("get", "/api/sessions/{}/ready"),
    ("post", "/api/sessions/{}/ready"),
    ("post", "/api/sessions/{}/cancel"),
    ("get", "/api/me/sessions"),
    ("post", "/api/tokens"),
    ("get", "/api/time"),
    ("get", "/api/sessions/cleanup"),
    ("post", "/api/sessions/cleanup"),
    ("get", "/api/cron/cleanup-sessions"),
    ("post", "/api/cron/cleanup-sessions"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


async def scrape(api: Api) -> list[Sample]:
    """Every sample the metrics endpoint shows, checking its content type on the way."""
    response = await api.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def samples_named(samples: list[Sample], name: str) -> list[Sample]:
    return [sample for sample in samples if sample.name == name]


async def openapi_operations(api: Api) -> dict[tuple[str, str], dict[str, Any]]:
    """The OpenAPI document's operations by method and parameter-blind path."""
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200, response.text
    operations: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in response.json()["paths"].items():
        blind = re.sub(r"\{[^}]+\}", "{}", path)
        for method, operation in item.items():
            operations[(method, blind)] = operation
    return operations


async def test_healthz_answers_ok(api: Api) -> None:
    """Liveness answers 200 without credentials."""
    response = await api.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_each_check(api: Api, backend: Backend) -> None:
    """Readiness is 200 with a check per dependency: the database, and Redis if set."""
    response = await api.client.get("/readyz")

    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    if backend.redis_url is None:
        assert "redis" not in checks
    else:
        assert checks["redis"] == "ok"


async def test_readyz_unreachable_redis_is_unavailable(
    api_factory: ApiFactory, sqlite_url: str
) -> None:
    """With Redis configured but down, readiness is a 503 that names the check."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    api = await api_factory(Backend("sqlite+dead-redis", sqlite_url, down))

    response = await api.client.get("/readyz")

    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"] != "ok"


async def test_metrics_counts_sessions_by_status(api: Api) -> None:
    """The sessions gauge shows every status, counted at scrape time."""
    for session_id in ("b-1", "b-2"):
        await api.client.post(
            "/api/sessions", json=booking(id=session_id), headers=api.platform
        )
    await api.client.post("/api/sessions/b-2/cancel", headers=api.platform)

    samples = samples_named(await scrape(api), "sessionclock_sessions")

    by_status = {sample.labels["status"]: sample.value for sample in samples}
    assert by_status == {
        "scheduled": 1,
        "waiting": 0,
        "ready": 0,
        "expired": 0,
        "cancelled": 1,
    }


async def test_metrics_counts_transitions(api: Api) -> None:
    """The transitions counter grows by the status each change led to."""
    await api.client.post("/api/sessions", json=booking(id="b-1"), headers=api.platform)
    api.clock.advance(6 * MINUTE_MS)
    await api.client.get("/api/sessions/b-1", headers=api.platform)

    samples = samples_named(await scrape(api), "sessionclock_transitions_total")

    by_target = {sample.labels["to"]: sample.value for sample in samples}
    assert by_target["scheduled"] == 1
    assert by_target["waiting"] == 1


async def test_metrics_time_requests_by_route_template(api: Api) -> None:
    """Request durations are labelled with the route template, never the raw path."""
    await api.client.post("/api/sessions", json=booking(id="b-1"), headers=api.platform)
    await api.client.get("/api/sessions/b-1", headers=api.platform)
    await api.client.get("/api/sessions/b-missing", headers=api.platform)

    samples = samples_named(
        await scrape(api), "sessionclock_http_request_duration_seconds_count"
    )

    routes = {sample.labels["route"] for sample in samples}
    assert "/api/sessions/{session_id}" in routes
    assert not [route for route in routes if "b-1" in route or "b-missing" in route]
    served = {
        (sample.labels["method"], sample.labels["status"]): sample.value
        for sample in samples
        if sample.labels["route"] == "/api/sessions/{session_id}"
    }
    assert served[("GET", "200")] == 1
    assert served[("GET", "404")] == 1


async def test_time_answers_server_clock(api: Api) -> None:
    """GET /api/time tells the server's manual clock, in ISO and in milliseconds."""
    first = await api.client.get("/api/time")
    api.clock.advance(1_234)
    second = await api.client.get("/api/time")

    assert first.status_code == 200, first.text
    assert first.json() == {"server_time": to_iso(T0_MS), "server_time_ms": T0_MS}
    assert second.json()["server_time_ms"] == T0_MS + 1_234
    assert second.json()["server_time"] == to_iso(T0_MS + 1_234)
    assert ISO_MS_Z.match(second.json()["server_time"])


async def test_time_ignores_bad_credentials(api: Api) -> None:
    """Anyone may ask the time, even with an expired or broken token."""
    response = await api.client.get(
        "/api/time", headers={"Authorization": "Bearer not-a-token"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["server_time_ms"] == T0_MS


async def test_docs_served_as_html(api: Api) -> None:
    """The interactive API docs are served and load the OpenAPI document."""
    response = await api.client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


async def test_openapi_lists_contract_paths(api: Api) -> None:
    """The OpenAPI document lists every HTTP operation of the contract, described."""
    operations = await openapi_operations(api)

    missing = CONTRACT_OPERATIONS - operations.keys()
    assert not missing, sorted(missing)
    for key in CONTRACT_OPERATIONS:
        operation = operations[key]
        assert operation.get("description") or operation.get("summary"), key


async def test_busy_pool_answers_503_not_500(
    api_factory: ApiFactory, postgres_url: str
) -> None:
    """A request that finds every pooled connection busy is told to come back."""
    api = await api_factory(
        Backend("postgres-small-pool", postgres_url),
        db_pool_size=1,
        db_pool_timeout_s=0.2,
    )
    await api.client.post("/api/sessions", json=booking(id="b-1"), headers=api.platform)

    async with api.runtime.repository.engine.connect() as held:
        await held.exec_driver_sql("SELECT 1")
        response = await api.client.get(
            "/api/sessions/b-1/ready", headers=api.as_user(CLIENT)
        )

    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert "too busy" in response.json()["detail"]
    after = await api.client.get("/api/sessions/b-1/ready", headers=api.as_user(CLIENT))
    assert after.status_code == 200, after.text
