"""Settings from the environment, with the contract's names."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sessionclock.bookings.strapi.fields import outcome_values, status_values
from sessionclock.constants import (
    DEFAULT_SQLITE_FILE,
    DEV_SECRETS_FILE,
    STRAPI_MAX_PAGE_SIZE,
)
from sessionclock.core.session import Timing
from sessionclock.errors import ConfigError
from sessionclock.video.url_template import check_template

MIN_SECRET_CHARS = 32


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Everything an operator can set; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="SESSIONCLOCK_", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///./{DEFAULT_SQLITE_FILE}",
        validation_alias=_env("DATABASE_URL"),
    )
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    secret_key: SecretStr | None = None
    api_key: SecretStr | None = None
    cron_secret_token: SecretStr | None = Field(
        default=None, validation_alias=_env("CRON_SECRET_TOKEN")
    )
    strapi_url: str | None = Field(default=None, validation_alias=_env("STRAPI_URL"))
    strapi_api_token: SecretStr | None = Field(
        default=None, validation_alias=_env("STRAPI_API_TOKEN")
    )
    env: Literal["development", "production"] = "development"

    lobby_lead_s: int = Field(default=300, ge=0, le=86_400)
    sync_interval_s: float = Field(default=2.0, gt=0, le=60)
    warnings_s: Annotated[tuple[int, ...], NoDecode] = (300, 60)
    no_show_s: int = Field(default=600, ge=0)
    retention_s: int = Field(default=3600, ge=0)

    public_url: str | None = None
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    sweep_interval_s: float = Field(default=10.0, gt=0, le=3600)
    cleanup_interval_s: float = Field(default=300.0, gt=0)
    cleanup_rate_limit: str = "10/minute"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_pool_timeout_s: float = Field(default=10.0, gt=0, le=120)
    auto_migrate: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    node_name: str | None = Field(default=None, max_length=128)
    dev_secrets_file: Path = Path(DEV_SECRETS_FILE)

    video_provider: Literal["builtin", "url"] = "builtin"
    ice_servers: Annotated[tuple[dict[str, Any], ...], NoDecode] = ()
    turn_urls: Annotated[tuple[str, ...], NoDecode] = ()
    turn_secret: SecretStr | None = None
    turn_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    video_url_template: str | None = None
    video_jwt_secret: SecretStr | None = None
    video_jwt_app_id: str = "sessionclock"
    video_jwt_audience: str = "jitsi"
    video_jwt_subject: str = "*"

    # Where bookings live, and what the platform hears back; see docs/strapi.md and
    # docs/webhooks.md. Unset, the source is `strapi` when STRAPI_URL is set.
    booking_source: Literal["local", "strapi"] | None = None
    strapi_collection: str = Field(default="bookings", pattern=r"^[a-z0-9-]+$")
    strapi_model: str = Field(default="booking", pattern=r"^[a-z0-9-]+$")
    strapi_id_field: Literal["documentId", "id"] = "documentId"
    strapi_starts_at_field: str = "startsAt"
    strapi_ends_at_field: str | None = "endsAt"
    strapi_duration_field: str | None = None
    strapi_duration_unit_s: int = Field(default=60, ge=1, le=3600)
    strapi_status_field: str | None = "bookingStatus"
    strapi_status_values: str = (
        "pending=pending,confirmed=confirmed,cancelled=cancelled"
    )
    strapi_client_field: str = "client"
    strapi_companion_field: str = "companion"
    strapi_participants: Literal["relation", "field"] = "relation"
    strapi_user_key: Literal["id", "documentId", "username", "email"] = "id"
    strapi_outcome_field: str | None = None
    strapi_outcome_values: str = ""
    strapi_webhook_secret: SecretStr | None = None
    strapi_sync_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    strapi_page_size: int = Field(default=100, ge=1, le=STRAPI_MAX_PAGE_SIZE)
    strapi_timeout_s: float = Field(default=10.0, gt=0, le=120)
    strapi_jwt_cache_s: float = Field(default=60.0, ge=0, le=3600)
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    outbox_interval_s: float = Field(default=5.0, gt=0, le=3600)
    outbox_max_attempts: int = Field(default=20, ge=1, le=1000)
    outbox_backoff_base_s: float = Field(default=1.0, gt=0, le=3600)
    outbox_backoff_cap_s: float = Field(default=600.0, gt=0, le=86_400)

    @field_validator(
        "redis_url",
        "secret_key",
        "api_key",
        "cron_secret_token",
        "strapi_url",
        "strapi_api_token",
        "public_url",
        "node_name",
        "turn_secret",
        "video_url_template",
        "video_jwt_secret",
        "booking_source",
        "strapi_ends_at_field",
        "strapi_duration_field",
        "strapi_status_field",
        "strapi_outcome_field",
        "strapi_webhook_secret",
        "webhook_url",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `REDIS_URL=` in a shell or a compose file means "not set", not "".
        return None if value == "" else value

    @field_validator("database_url", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object) -> object:
        return f"sqlite+aiosqlite:///./{DEFAULT_SQLITE_FILE}" if value == "" else value

    @field_validator("cleanup_rate_limit")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"expected a rate such as '10/minute' or '2 per second', got {value!r}"
            ) from None
        return value

    @field_validator("strapi_status_values")
    @classmethod
    def _valid_status_values(cls, value: str) -> str:
        status_values(value)
        return value

    @field_validator("strapi_outcome_values")
    @classmethod
    def _valid_outcome_values(cls, value: str) -> str:
        outcome_values(value)
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("turn_urls", mode="before")
    @classmethod
    def _split_turn_urls(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(url.strip() for url in value.split(",") if url.strip())
        if isinstance(value, tuple | list):
            for url in value:
                if not str(url).startswith(("turn:", "turns:")):
                    raise ValueError(f"expected turn: or turns: URLs, got {url!r}")
        return value

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _parse_ice_servers(cls, value: object) -> object:
        if isinstance(value, str):
            text = value
            try:
                value = json.loads(text) if text.strip() else []
            except ValueError:
                raise ValueError(
                    "expected a JSON list of RTCIceServer objects such as "
                    '[{"urls": "stun:stun.example.org:3478"}], got '
                    f"{text[:80]!r}"
                ) from None
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a JSON list of ICE servers, got {value!r}")
        for server in value:
            urls = server.get("urls") if isinstance(server, dict) else None
            listed = [urls] if isinstance(urls, str) else urls
            if (
                not isinstance(listed, list)
                or not listed
                or not all(
                    isinstance(url, str)
                    and url.startswith(("stun:", "turn:", "turns:"))
                    for url in listed
                )
            ):
                raise ValueError(
                    'expected each ICE server as {"urls": "stun:…" or "turn:…", '
                    f'"username"?, "credential"?}}, got {server!r}'
                )
        return tuple(value)

    @field_validator("video_url_template")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value

    @field_validator("warnings_s", mode="before")
    @classmethod
    def _split_warnings(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            try:
                return tuple(int(part) for part in parts)
            except ValueError:
                raise ValueError(
                    f"expected remaining seconds separated by commas, got {value!r}"
                ) from None
        return value

    @field_validator("warnings_s")
    @classmethod
    def _positive_warnings(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(w <= 0 for w in value):
            raise ValueError(f"expected positive remaining seconds, got {value!r}")
        return tuple(sorted(set(value), reverse=True))

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        # Operators paste the URLs their other tools use; pick the async driver here.
        for plain, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return driver + value[len(plain) :]
        return value

    @model_validator(mode="after")
    def _provider_has_template(self) -> Settings:
        if self.video_provider == "url" and not self.video_url_template:
            raise ValueError(
                "SESSIONCLOCK_VIDEO_PROVIDER=url needs SESSIONCLOCK_VIDEO_URL_TEMPLATE"
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def timing(self) -> Timing:
        return Timing(no_show_s=self.no_show_s, warnings_s=self.warnings_s)

    @property
    def booking_source_kind(self) -> Literal["local", "strapi"]:
        if self.booking_source is not None:
            return self.booking_source
        return "strapi" if self.strapi_url else "local"

    @property
    def node(self) -> str:
        return self.node_name or f"{os.uname().nodename}:{os.getpid()}"


def load_settings(**overrides: object) -> Settings:
    """Read the environment, then make sure a server can start with it.

    In production a missing or short secret stops the start with a message that names
    it. In development missing secrets are generated once and kept in a local file, so
    that sign-in links keep working across restarts.
    """
    try:
        # Field names as keywords; pydantic checks each value at run time.
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as error:
        raise ConfigError(f"invalid settings: {error}") from None

    if settings.is_production:
        _require_secrets(settings)
        return settings
    problems = _delivery_problems(settings)
    if problems:
        raise ConfigError(
            "cannot start: " + "; ".join(problems) + " (see docs/configuration.md)"
        )
    return _with_dev_secrets(settings)


def _require_secrets(settings: Settings) -> None:
    problems = []
    for name, value in (
        ("SESSIONCLOCK_SECRET_KEY", settings.secret_key),
        ("SESSIONCLOCK_API_KEY", settings.api_key),
    ):
        if value is None or not value.get_secret_value():
            problems.append(f"{name} is not set")
        elif len(value.get_secret_value()) < MIN_SECRET_CHARS:
            problems.append(f"{name} is shorter than {MIN_SECRET_CHARS} characters")
    token = settings.cron_secret_token
    if token is not None and len(token.get_secret_value()) < MIN_SECRET_CHARS:
        problems.append(
            f"CRON_SECRET_TOKEN is shorter than {MIN_SECRET_CHARS} characters"
        )
    problems.extend(_delivery_problems(settings))
    if problems:
        raise ConfigError(
            "cannot start in production: "
            + "; ".join(problems)
            + " (see docs/configuration.md)"
        )


def _delivery_problems(settings: Settings) -> list[str]:
    """What stops the booking source or the webhooks from working as configured."""
    problems = []
    if settings.booking_source_kind == "strapi":
        if not settings.strapi_url or settings.strapi_api_token is None:
            problems.append(
                "the strapi booking source needs STRAPI_URL and STRAPI_API_TOKEN"
            )
        if not settings.strapi_ends_at_field and not settings.strapi_duration_field:
            problems.append(
                "SESSIONCLOCK_STRAPI_ENDS_AT_FIELD or "
                "SESSIONCLOCK_STRAPI_DURATION_FIELD must name where a booking ends"
            )
    if settings.webhook_url and settings.webhook_secret is None:
        problems.append("SESSIONCLOCK_WEBHOOK_URL needs SESSIONCLOCK_WEBHOOK_SECRET")
    return problems


def _with_dev_secrets(settings: Settings) -> Settings:
    if settings.secret_key is not None and settings.api_key is not None:
        return settings

    path = settings.dev_secrets_file
    stored: dict[str, str] = {}
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"cannot read development secrets in {path}: {error}"
            ) from None
    changed = False
    for key in ("secret_key", "api_key"):
        if not stored.get(key):
            stored[key] = secrets.token_urlsafe(32)
            changed = True
    if changed:
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(stored, indent=2) + "\n")

    updates: dict[str, SecretStr] = {}
    if settings.secret_key is None:
        updates["secret_key"] = SecretStr(stored["secret_key"])
    if settings.api_key is None:
        updates["api_key"] = SecretStr(stored["api_key"])
    return settings.model_copy(update=updates)
