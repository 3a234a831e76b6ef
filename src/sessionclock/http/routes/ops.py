"""For operators: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import structlog
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sessionclock.http.deps import RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: the database (and Redis, when configured) answer."""
    checks: dict[str, str] = {}
    try:
        await runtime.repository.ping()
        checks["database"] = "ok"
    except Exception as error:
        log.warning("readyz.database_down", error=str(error))
        checks["database"] = "unreachable"
    redis = await runtime.redis_reachable()
    if redis is not None:
        checks["redis"] = "ok" if redis else "unreachable"
        # Pub/sub resubscribes a moment after Redis answers again.
        checks["bus"] = "ok" if runtime.bus.connected else "reconnecting"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus metrics of this node; sessions by status are counted now."""
    try:
        for status, count in (await runtime.repository.count_by_status()).items():
            runtime.metrics.sessions.labels(status).set(count)
        for target, counts in (await runtime.outbox.repository.counts()).items():
            for status, count in counts.items():
                runtime.metrics.outbox.labels(target, status).set(count)
    except Exception as error:
        log.warning("metrics.count_failed", error=str(error))
    runtime.metrics.scheduler_sessions.set(runtime.scheduler.tracked)
    return Response(
        generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
