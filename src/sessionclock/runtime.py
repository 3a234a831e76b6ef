"""Wires the parts of one node together from its settings, and takes them apart."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessionclock.bookings.base import BookingSource
from sessionclock.bookings.factory import build_outbound, notice_policy
from sessionclock.bus import BusMessage, EventBus, InProcessBus, RedisBus
from sessionclock.constants import (
    CLIENT_LOG_RATE,
    REDIS_MAX_CONNECTIONS,
    REDIS_POOL_WAIT_S,
)
from sessionclock.core.clock import Clock, SystemClock
from sessionclock.credentials import Authenticator, TokenIssuer
from sessionclock.metrics import Metrics
from sessionclock.ratelimit import RateLimiter
from sessionclock.realtime.hub import Hub
from sessionclock.realtime.presence import LocalPresence, Presence, RedisPresence
from sessionclock.service.calls import CallService
from sessionclock.service.outbox import OutboxWorker
from sessionclock.service.scheduler import Scheduler
from sessionclock.service.sessions import SessionService
from sessionclock.settings import Settings
from sessionclock.storage.attendance import AttendanceRepository
from sessionclock.storage.database import create_engine, migrate
from sessionclock.storage.outbox import OutboxRepository
from sessionclock.storage.repository import SessionRepository
from sessionclock.video import BuiltinProvider, UrlTemplateProvider, VideoProvider

log = structlog.get_logger(__name__)


@dataclass
class Runtime:
    """Everything a node runs with; one per process (or per test)."""

    settings: Settings
    clock: Clock
    repository: SessionRepository
    bus: EventBus
    service: SessionService
    scheduler: Scheduler
    issuer: TokenIssuer
    authenticator: Authenticator
    cleanup_limiter: RateLimiter
    client_log_limiter: RateLimiter
    metrics: Metrics
    redis: Redis | None
    hub: Hub
    presence: Presence
    calls: CallService
    bookings: BookingSource
    outbox: OutboxWorker

    async def redis_reachable(self) -> bool | None:
        """None without Redis; otherwise whether it answers a ping."""
        if self.redis is None:
            return None
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False


def redis_client(url: str) -> Redis:
    """A Redis client that survives a Redis restart and a burst of commands.

    Pooled connections die with the server; a command that meets one retries on a
    fresh connection instead of failing, and idle connections are checked. When
    every pooled connection is busy (thousands of sockets closing at once, each
    leaving presence), a command waits for one instead of failing.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_WAIT_S,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=10,
        # A Redis that hangs costs a request seconds, not forever; pub/sub polls
        # with its own shorter timeout.
        socket_connect_timeout=2,
        socket_timeout=5,
    )
    return Redis.from_pool(pool)


def video_provider(settings: Settings) -> VideoProvider:
    """The video provider the settings name: the built-in call, or a URL template."""
    if settings.video_provider == "url":
        assert settings.video_url_template is not None  # checked by Settings
        assert settings.secret_key is not None
        jwt_secret = settings.video_jwt_secret
        return UrlTemplateProvider(
            settings.video_url_template,
            room_secret=settings.secret_key.get_secret_value(),
            jwt_secret=None if jwt_secret is None else jwt_secret.get_secret_value(),
            jwt_app_id=settings.video_jwt_app_id,
            jwt_audience=settings.video_jwt_audience,
            jwt_subject=settings.video_jwt_subject,
        )
    turn_secret = settings.turn_secret
    return BuiltinProvider(
        settings.ice_servers,
        turn_urls=settings.turn_urls,
        turn_secret=None if turn_secret is None else turn_secret.get_secret_value(),
        turn_ttl_s=settings.turn_ttl_s,
    )


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, clock: Clock | None = None, run_scheduler: bool = True
) -> AsyncIterator[Runtime]:
    """Connect, migrate if allowed, start the scheduler; undo it all on exit."""
    if settings.secret_key is None or settings.api_key is None:
        raise ValueError("settings without secrets; build them with load_settings()")
    clock = clock or SystemClock()
    engine = create_engine(
        settings.database_url, settings.db_pool_size, settings.db_pool_timeout_s
    )
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    try:
        if settings.auto_migrate:
            await migrate(engine)
        metrics = Metrics()
        repository = SessionRepository(engine, notice_policy(settings))
        bus: EventBus
        presence: Presence
        if redis is not None:
            bus = RedisBus(redis, settings.node)
            presence = RedisPresence(redis, settings.node, clock)
        else:
            bus = InProcessBus()
            presence = LocalPresence()
        service = SessionService(
            repository,
            bus,
            clock,
            settings.timing,
            metrics,
            node=settings.node,
            retention_s=settings.retention_s,
        )
        scheduler = Scheduler(
            service,
            metrics,
            sweep_interval_s=settings.sweep_interval_s,
            cleanup_interval_s=settings.cleanup_interval_s,
        )

        async def track(message: BusMessage) -> None:
            if message.session is not None:
                scheduler.track(message.session)

        outbound = build_outbound(settings, service, OutboxRepository(engine))

        async def nudge_outbox(message: BusMessage) -> None:
            # Only a change of a session writes to the outbox; presence and the
            # call's signalling never do.
            if message.session is not None:
                outbound.outbox.nudge()

        bus.subscribe(track)
        policy = notice_policy(settings)
        if policy.webhooks or policy.write_back:
            # With nothing to tell, a nudge would only cost a query per change;
            # the worker's own interval still drains what earlier settings wrote.
            bus.subscribe(nudge_outbox)
        bus.on_reconnect(scheduler.reload)
        hub = Hub(
            service,
            bus,
            presence,
            metrics,
            node=settings.node,
            sync_interval_s=settings.sync_interval_s,
        )
        calls = CallService(
            service,
            AttendanceRepository(engine),
            bus,
            video_provider(settings),
            metrics,
            node=settings.node,
        )
        issuer = TokenIssuer(settings.secret_key.get_secret_value(), clock)
        cron = settings.cron_secret_token
        runtime = Runtime(
            settings=settings,
            clock=clock,
            repository=repository,
            bus=bus,
            service=service,
            scheduler=scheduler,
            issuer=issuer,
            authenticator=Authenticator(
                settings.api_key.get_secret_value(),
                None if cron is None else cron.get_secret_value(),
                issuer,
                outbound.bookings.participant,
            ),
            cleanup_limiter=RateLimiter(
                settings.cleanup_rate_limit, settings.redis_url, redis
            ),
            client_log_limiter=RateLimiter(CLIENT_LOG_RATE, settings.redis_url, redis),
            metrics=metrics,
            redis=redis,
            hub=hub,
            presence=presence,
            calls=calls,
            bookings=outbound.bookings,
            outbox=outbound.outbox,
        )
        await hub.start()
        await bus.start()
        await outbound.start(run_background=run_scheduler)
        if run_scheduler:
            await scheduler.start()
        log.info(
            "node.started",
            node=settings.node,
            env=settings.env,
            database=engine.dialect.name,
            bookings=outbound.bookings.name,
        )
        try:
            yield runtime
        finally:
            await hub.stop()
            await scheduler.stop()
            await outbound.stop()
            await bus.stop()
            log.info("node.stopped", node=settings.node)
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
