"""Structured logs: JSON in production, a readable console in development."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from sessionclock.settings import Settings

# Keys whose values must never reach a log line, wherever they appear.
_SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "authorization",
        "secret",
        "secret_key",
        "api_key",
        "password",
    }
)


_TOKEN_IN_ADDRESS = re.compile(r"(access_token=)[^&\s\"']+")


class _RedactAddressTokens(logging.Filter):
    """uvicorn logs each WebSocket handshake with its query string: hide tokens."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            message = record.getMessage()
            if "access_token=" in message:
                record.msg = _TOKEN_IN_ADDRESS.sub(r"\1[redacted]", message)
                record.args = None
        return True


def _redact(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "[redacted]"
    return event


def configure_logging(settings: Settings) -> None:
    """Route structlog and the standard library's loggers to one formatted stream."""
    level = getattr(logging, settings.log_level.upper())
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and settings.is_production
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Drops calls below the level before any processor runs: DEBUG costs nothing.
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if use_json else []),
            renderer,
        ],
    )
    # No line shows where it was logged from, or the thread and process: the
    # logging module's documented switches skip finding them for every record.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_RedactAddressTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)

    # uvicorn's access log repeats what our request events say, with the query
    # string (and so tokens) in it; keep its errors only.
    logging.getLogger("uvicorn.access").handlers.clear()
    logging.getLogger("uvicorn.access").propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Libraries speak at WARNING and above; DEBUG is for sessionclock's own events.
    for name in ("sqlalchemy", "alembic", "aiosqlite", "asyncio", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
