"""The pages around the lobby: accessibility, both languages, and the debug controls."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import (
    LiveServer,
    Participants,
    all_text,
    serious_violations,
)

pytestmark = pytest.mark.slow

SPANISH = {"locale": "es-ES"}


def test_home_lobby_and_ending_pass_an_accessibility_scan(
    live_server: LiveServer, participants: Participants
) -> None:
    """axe finds no serious or critical problem on home, lobby and ending."""
    open_now = live_server.create_session("a11y-lobby", starts_in_s=120)
    home = participants.open(live_server.link(open_now, "client", "/"))
    expect(home.get_by_role("dialog")).to_be_visible(timeout=15_000)
    assert serious_violations(home) == []

    lobby = participants.open(live_server.link(open_now, "companion"))
    expect(lobby.get_by_role("timer")).to_be_visible()
    assert serious_violations(lobby) == []

    ended = live_server.create_session("a11y-ended", starts_in_s=120)
    live_server.api("POST", "/api/sessions/a11y-ended/cancel")
    ending = participants.open(live_server.link(ended, "client"))
    expect(ending.get_by_role("heading", name="The session has ended")).to_be_visible()
    assert serious_violations(ending) == []
    assert not participants.errors


def test_the_lobby_works_by_keyboard_alone(
    live_server: LiveServer, participants: Participants
) -> None:
    """Focus starts inside the dialog, stays there, and Escape closes it."""
    session = live_server.create_session("keys", starts_in_s=120)
    page = participants.open(live_server.link(session, "client", "/"))
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=15_000)

    ready = page.get_by_role("button", name="I'm ready")
    expect(ready).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="I'm not ready yet")).to_be_visible()
    for _ in range(6):
        page.keyboard.press("Tab")
        focused_inside: bool = page.evaluate(
            "() => document.activeElement?.tagName === 'SESSION-LOBBY'"
        )
        assert focused_inside
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def test_the_countdown_is_announced_once_a_minute_not_every_second(
    live_server: LiveServer, participants: Participants
) -> None:
    """The timer itself is silent; a polite live region speaks."""
    session = live_server.create_session("polite", starts_in_s=120)
    page = participants.open(live_server.link(session, "client"))
    timer = page.get_by_role("timer")
    expect(timer).to_have_attribute("aria-live", "off")
    live = page.locator("session-lobby [aria-live='polite']")
    expect(live).to_have_count(1)
    # Right after load the region is empty: nothing is said every second.
    expect(live).to_have_text("")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en-US", ["Your sessions", "Session lobby", "I'm ready", "Starts in"]),
        ("es-ES", ["Tus sesiones", "Sala de espera", "Estoy listo", "Empieza en"]),
    ],
)
def test_both_languages_render_without_a_missing_string(
    live_server: LiveServer,
    participants: Participants,
    locale: str,
    expected: list[str],
) -> None:
    """Home, lobby, ending and debug show only catalogue strings, in one language."""
    language = locale[:2]
    session = live_server.create_session(f"lang-{language}", starts_in_s=120)
    ended = live_server.create_session(f"lang-{language}-end", starts_in_s=120)
    live_server.api("POST", f"/api/sessions/{ended['id']}/cancel")

    home = participants.open(live_server.link(session, "client", "/"), locale=locale)
    expect(home.get_by_role("dialog")).to_be_visible(timeout=15_000)
    lobby = participants.open(live_server.link(session, "companion"), locale=locale)
    expect(lobby.get_by_role("timer")).to_be_visible()
    ending = participants.open(live_server.link(ended, "client"), locale=locale)
    expect(ending.locator("session-lobby [data-ended-reason]")).not_to_be_empty()
    debug = participants.open(f"{live_server.base_url}/debug", locale=locale)
    expect(debug.get_by_role("table").first).to_be_visible()

    shown = "\n".join(all_text(page) for page in (home, lobby, ending, debug))
    assert "⟦" not in shown
    for text in expected:
        assert text in shown
    assert home.locator("html").get_attribute("lang") == language
    assert not participants.errors


def test_the_language_switch_changes_the_page_and_is_kept(
    live_server: LiveServer, participants: Participants
) -> None:
    """Choosing Español on an English page turns it, and later pages, Spanish."""
    session = live_server.create_session("switch", starts_in_s=600)
    page = participants.open(live_server.link(session, "client"))
    expect(page.get_by_role("heading", name="Your session")).to_be_visible()
    page.get_by_role("link", name="Español").click()
    expect(page.get_by_role("heading", name="Tu sesión")).to_be_visible()
    assert "lang=" not in page.url
    page.goto(f"{live_server.base_url}/")
    expect(page.get_by_role("heading", name="Tus sesiones")).to_be_visible()


def test_debug_controls_work_in_development(
    live_server: LiveServer, participants: Participants
) -> None:
    """Create a test session, force its lobby open, run cleanup, see the state."""
    page = participants.open(f"{live_server.base_url}/debug")
    page.get_by_label("Starts in (minutes)").fill("30")
    page.get_by_role("button", name="Create test session").click()
    links = page.get_by_role("link", name=re.compile(r"sessions.+access_token"))
    expect(links).to_have_count(2)
    session_id = page.get_by_label("Session id").input_value()
    assert session_id

    page.get_by_role("button", name="Open the lobby now").click()
    expect(page.get_by_text(f"The lobby of {session_id} is open.")).to_be_visible()
    state = httpx.get(f"{live_server.base_url}/api/debug/state", timeout=5).json()
    assert state["sessions_by_status"].get("waiting", 0) >= 1

    page.get_by_role("button", name="Run cleanup now").click()
    expect(page.get_by_text(re.compile(r"Expired \d+, purged \d+"))).to_be_visible()
    table = page.get_by_role("table", name="Connected sockets per node")
    expect(table).to_be_visible()
    expect(page.get_by_text("Event bus: in-process, connected")).to_be_visible()

    # The link a participant gets works: it opens that participant's lobby.
    lobby = participants.open(links.first.get_attribute("href") or "")
    expect(lobby.get_by_role("button", name="I'm ready")).to_be_enabled()
    assert not participants.errors


def test_debug_is_not_found_in_production(production_server: LiveServer) -> None:
    """In production /debug and its API answer 404."""
    for path in ("/debug", "/api/debug/state"):
        response = httpx.get(production_server.base_url + path, timeout=5)
        assert response.status_code == 404, path
    response = httpx.post(
        production_server.base_url + "/api/debug/cleanup", json={}, timeout=5
    )
    assert response.status_code == 404
