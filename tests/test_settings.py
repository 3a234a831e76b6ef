"""Settings for booking sources and webhooks: what is chosen, and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionclock.errors import ConfigError
from sessionclock.settings import load_settings


def _load(tmp_path: Path, **values: object) -> object:
    return load_settings(dev_secrets_file=tmp_path / "secrets.json", **values)


def test_source_is_local_without_strapi(tmp_path: Path) -> None:
    """Without STRAPI_URL the bookings live in sessionclock."""
    settings = load_settings(dev_secrets_file=tmp_path / "secrets.json")
    assert settings.booking_source_kind == "local"


def test_source_is_strapi_when_its_url_is_set(tmp_path: Path) -> None:
    """STRAPI_URL with its token makes Strapi the source, unless told otherwise."""
    strapi = {"strapi_url": "http://strapi.test", "strapi_api_token": "t" * 40}
    chosen = load_settings(dev_secrets_file=tmp_path / "s.json", **strapi)
    assert chosen.booking_source_kind == "strapi"
    local = load_settings(
        dev_secrets_file=tmp_path / "s.json", booking_source="local", **strapi
    )
    assert local.booking_source_kind == "local"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"booking_source": "strapi"}, "STRAPI_URL and STRAPI_API_TOKEN", id="token"
        ),
        pytest.param(
            {
                "strapi_url": "http://strapi.test",
                "strapi_api_token": "t" * 40,
                "strapi_ends_at_field": "",
            },
            "where a booking ends",
            id="no-end",
        ),
        pytest.param(
            {"webhook_url": "http://platform.test/hooks"},
            "SESSIONCLOCK_WEBHOOK_SECRET",
            id="webhook-secret",
        ),
        pytest.param(
            {"strapi_status_values": "pendiente=maybe"}, "'maybe'", id="status-map"
        ),
        pytest.param(
            {"strapi_outcome_values": "late=tarde"}, "'late'", id="outcome-map"
        ),
        pytest.param({"strapi_page_size": 1000}, "strapi_page_size", id="page-size"),
    ],
)
def test_impossible_delivery_settings_refuse_to_start(
    tmp_path: Path, values: dict[str, object], message: str
) -> None:
    """Settings that could not sync, write back or sign are refused with the name."""
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, **values)


def test_settings_read_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented environment names reach the settings."""
    monkeypatch.setenv("STRAPI_URL", "http://strapi.test")
    monkeypatch.setenv("STRAPI_API_TOKEN", "t" * 40)
    monkeypatch.setenv("SESSIONCLOCK_STRAPI_COLLECTION", "citas")
    monkeypatch.setenv("SESSIONCLOCK_STRAPI_DURATION_FIELD", "durationMinutes")
    monkeypatch.setenv("SESSIONCLOCK_STRAPI_ENDS_AT_FIELD", "")
    monkeypatch.setenv("SESSIONCLOCK_WEBHOOK_URL", "http://platform.test/hooks")
    monkeypatch.setenv("SESSIONCLOCK_WEBHOOK_SECRET", "w" * 40)
    settings = load_settings(dev_secrets_file=tmp_path / "secrets.json")
    assert settings.strapi_collection == "citas"
    assert settings.strapi_ends_at_field is None
    assert settings.strapi_duration_field == "durationMinutes"
    assert settings.webhook_url == "http://platform.test/hooks"
