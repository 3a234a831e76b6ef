"""The lobby as two participants see it, each in a browser of their own."""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from sessionclock.core.clock import to_epoch_ms
from tests.web.conftest import LiveServer, Participants

pytestmark = pytest.mark.slow

OPENS_WITHIN_MS = 15_000


def _epoch_ms(iso: str) -> int:
    return to_epoch_ms(datetime.fromisoformat(iso))


def _shown_s(timer: Locator) -> int:
    """The countdown's text as seconds: M:SS or H:MM:SS."""
    seconds = 0
    for part in timer.inner_text().strip().split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def _lobby(page: Page) -> Locator:
    return page.locator("session-lobby .lobby")


def _both_open_home(
    live_server: LiveServer, participants: Participants, session: dict[str, Any]
) -> tuple[Page, Page]:
    client = participants.open(live_server.link(session, "client", "/"))
    companion = participants.open(live_server.link(session, "companion", "/"))
    return client, companion


def test_lobby_opens_on_its_own_on_home(
    live_server: LiveServer, participants: Participants
) -> None:
    """Both home pages open the lobby dialog when the lobby opens, with a notice."""
    session = live_server.create_session("web-opens", starts_in_s=64, lobby_lead_s=60)
    client = participants.open(
        live_server.link(session, "client", "/"), notifications=True
    )
    companion = participants.open(live_server.link(session, "companion", "/"))

    for page in (client, companion):
        expect(page.locator(".session-item")).to_have_count(1)
        expect(page.get_by_role("dialog")).to_be_hidden()
    for page in (client, companion):
        dialog = page.get_by_role("dialog", name="Session lobby")
        expect(dialog).to_be_visible(timeout=OPENS_WITHIN_MS)
        expect(dialog.get_by_role("timer")).to_have_text("1:00", timeout=3000)
        expect(page.get_by_role("button", name="I'm ready")).to_be_focused()
    shown = client.evaluate("() => globalThis.__shown")
    assert {"sound": True} in shown
    assert {
        "title": "Your session starts in 1 minute",
        "body": "The lobby is open: say you are ready when you are.",
    } in shown
    assert not participants.errors


def test_timers_agree_with_the_server_whatever_the_computer_clocks_say(
    live_server: LiveServer, participants: Participants
) -> None:
    """Clocks 10 minutes ahead and 7 behind both show the server's remaining time."""
    session = live_server.create_session("web-skew", starts_in_s=420)
    ahead = participants.open(live_server.link(session, "client"), skew_ms=600_000)
    behind = participants.open(live_server.link(session, "companion"), skew_ms=-420_000)
    starts_at_ms = _epoch_ms(session["starts_at"])

    for page in (ahead, behind):
        expect(page.get_by_role("timer")).to_have_text(
            re.compile(r"^\d+:\d\d$"), timeout=5000
        )
    # A few time exchanges have run by now; the first snapshot alone is coarse.
    time.sleep(1.5)
    for page in (ahead, behind):
        shown_s = _shown_s(page.get_by_role("timer"))
        expected_s = math.ceil((starts_at_ms - time.time() * 1000) / 1000)
        assert abs(shown_s - expected_s) <= 1, (shown_s, expected_s)
    assert not participants.errors


def test_ready_shows_at_once_and_both_ready_opens_the_call(
    live_server: LiveServer, participants: Participants
) -> None:
    """A ready mark shows in the other browser; when both are, both go to the call."""
    session = live_server.create_session(
        "web-ready", starts_in_s=90, lobby_lead_s=300, booking_status="pending"
    )
    client, companion = _both_open_home(live_server, participants, session)
    client_dialog = client.get_by_role("dialog")
    companion_dialog = companion.get_by_role("dialog")
    expect(client_dialog).to_be_visible(timeout=OPENS_WITHIN_MS)
    expect(companion_dialog).to_be_visible(timeout=OPENS_WITHIN_MS)
    expect(companion_dialog).to_contain_text("Booking pending")

    client.get_by_role("button", name="I'm ready").click()
    expect(companion_dialog.get_by_role("listitem").first).to_have_text(
        "Client: ready, connected", timeout=3000
    )
    expect(client.get_by_role("button", name="I'm not ready yet")).to_be_visible()

    companion.get_by_role("button", name="I'm ready").click()
    for page in (client, companion):
        page.wait_for_url("**/sessions/web-ready", timeout=5000)
        expect(page.get_by_role("heading", name="The call is open")).to_be_visible(
            timeout=5000
        )
    expect(client.get_by_text("Booking pending")).to_be_hidden()
    assert not participants.errors


def test_reload_keeps_the_state_and_the_countdown(
    live_server: LiveServer, participants: Participants
) -> None:
    """After a reload the ready marks and the countdown are what they were."""
    session = live_server.create_session("web-reload", starts_in_s=200)
    page = participants.open(live_server.link(session, "client"))
    page.get_by_role("button", name="I'm ready").click()
    expect(page.get_by_role("button", name="I'm not ready yet")).to_be_visible()

    page.reload()
    expect(_lobby(page).get_by_role("listitem").first).to_have_text(
        "Client (you): ready, connected"
    )
    expect(page.get_by_role("button", name="I'm not ready yet")).to_be_visible()
    time.sleep(1)
    expected_s = math.ceil(
        (_epoch_ms(session["starts_at"]) - time.time() * 1000) / 1000
    )
    assert abs(_shown_s(page.get_by_role("timer")) - expected_s) <= 1
    assert not participants.errors


def test_a_closed_dialog_stays_closed_after_reload(
    live_server: LiveServer, participants: Participants
) -> None:
    """Closing the lobby is remembered for that session; the list reopens it."""
    session = live_server.create_session("web-closed", starts_in_s=120)
    page = participants.open(live_server.link(session, "client", "/"))
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=OPENS_WITHIN_MS)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.reload()
    expect(page.locator(".session-item")).not_to_have_count(0)
    reopen = page.locator(".session-item[data-session-id='web-closed']").get_by_role(
        "button", name="Open the lobby"
    )
    expect(reopen).to_be_visible()
    expect(page.get_by_role("dialog")).to_be_hidden()
    reopen.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert not participants.errors


def test_the_ending_shows_for_both_at_ends_at(
    live_server: LiveServer, participants: Participants
) -> None:
    """When the booked time is up, both pages say so, whatever the browsers do."""
    session = live_server.create_session("web-ends", starts_in_s=2, duration_s=6)
    client = participants.open(live_server.link(session, "client"))
    companion = participants.open(
        live_server.link(session, "companion"), locale="es-ES"
    )
    client.get_by_role("button", name="I'm ready").click()
    companion.get_by_role("button", name="Estoy listo").click()
    expect(client.get_by_role("heading", name="The call is open")).to_be_visible()

    expect(client.get_by_role("heading", name="The session has ended")).to_be_visible(
        timeout=12_000
    )
    ended_at_ms = time.time() * 1000
    assert ended_at_ms - _epoch_ms(session["ends_at"]) < 3000
    expect(client.get_by_text("The booked time is up.")).to_be_visible()
    expect(
        companion.get_by_role("heading", name="La sesión ha terminado")
    ).to_be_visible(timeout=3000)
    expect(companion.get_by_text("Se acabó el tiempo reservado.")).to_be_visible()
    expect(client.get_by_role("timer")).to_be_hidden()
    assert not participants.errors


def test_a_no_show_says_who_did_not_come(
    live_server: LiveServer, participants: Participants
) -> None:
    """Only the client came: both pages say that the companion did not."""
    session = live_server.create_session("web-no-show", starts_in_s=1, duration_s=600)
    client = participants.open(live_server.link(session, "client"))
    companion = participants.open(live_server.link(session, "companion"))
    client.get_by_role("button", name="I'm ready").click()

    for page in (client, companion):
        expect(
            page.get_by_text("Nobody started the call: the companion did not come.")
        ).to_be_visible(timeout=12_000)
    assert not participants.errors


def test_a_stranger_sees_nothing(
    live_server: LiveServer, participants: Participants
) -> None:
    """Someone else's link to a session gets the same page as an unknown session."""
    session = live_server.create_session("web-private", starts_in_s=300)
    token = live_server.token("mallory")
    page = participants.open(
        f"{live_server.base_url}/sessions/{session['id']}?access_token={token}"
    )
    expect(page.get_by_role("heading", name="Session not found")).to_be_visible()
    expect(page.locator("session-lobby")).to_have_count(0)


def test_a_link_leaves_no_token_in_the_address(
    live_server: LiveServer, participants: Participants
) -> None:
    """The sign-in link's token becomes a cookie and leaves the address bar."""
    session = live_server.create_session("web-link", starts_in_s=300)
    page = participants.open(live_server.link(session, "client"))
    assert page.url.endswith("/sessions/web-link")
    cookies = page.context.cookies()
    assert [cookie["httpOnly"] for cookie in cookies if "token" in cookie["name"]] == [
        True
    ]
    expect(page.get_by_role("timer")).to_be_visible()
