"""Browser fixtures: Debian's Chromium driven by Playwright, and a live server.

No browser is downloaded: the tests use /usr/bin/chromium (or the path in
SESSIONCLOCK_TEST_CHROMIUM). Without it the tests are skipped, but fail under CI,
where .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    sync_playwright,
)

from sessionclock.core.clock import to_iso
from tests.conftest import unavailable
from tests.helpers import API_KEY, ServerProcess, server_env

CHROMIUM = os.environ.get("SESSIONCLOCK_TEST_CHROMIUM", "/usr/bin/chromium")

# How a wrong computer clock looks from inside a page: Date and the origin of
# performance.now() both move, as they do when the system clock is off.
SKEW_SCRIPT = """
(() => {
  const skewMs = %d;
  const RealDate = Date;
  class SkewedDate extends RealDate {
    constructor(...args) {
      if (args.length === 0) super(RealDate.now() + skewMs);
      else super(...args);
    }
    static now() {
      return RealDate.now() + skewMs;
    }
  }
  globalThis.Date = SkewedDate;
  const origin = performance.timeOrigin + skewMs;
  Object.defineProperty(Performance.prototype, "timeOrigin", { get: () => origin });
})();
"""


# Notifications and sounds are recorded in the page instead of shown and played.
NOTIFICATION_SCRIPT = """
(() => {
  globalThis.__shown = [];
  globalThis.Notification = class {
    static permission = "granted";
    static requestPermission = async () => "granted";
    constructor(title, options) {
      globalThis.__shown.push({ title, body: options?.body });
    }
  };
  const RealAudioContext = globalThis.AudioContext;
  globalThis.AudioContext = class extends RealAudioContext {
    constructor(...args) {
      super(...args);
      globalThis.__shown.push({ sound: true });
    }
  };
})();
"""


# Calls between two pages of the test stay on 127.0.0.1: every ICE candidate on
# another address is dropped before the other side learns of it.
LOOPBACK_ONLY_SCRIPT = """
(() => {
  const loopback = (line) => !/ typ /.test(line) || / 127\\.0\\.0\\.1 /.test(line);
  const clean = (description) => {
    if (!description?.sdp) return description;
    const sdp = description.sdp
      .split("\\r\\n")
      .filter((line) => !line.startsWith("a=candidate:") || loopback(line))
      .join("\\r\\n");
    return { type: description.type, sdp };
  };
  const proto = RTCPeerConnection.prototype;
  const setRemote = proto.setRemoteDescription;
  proto.setRemoteDescription = function (description, ...rest) {
    return setRemote.call(this, clean(description), ...rest);
  };
  const addCandidate = proto.addIceCandidate;
  proto.addIceCandidate = function (candidate, ...rest) {
    const dropped = candidate?.candidate && !loopback(candidate.candidate);
    if (dropped) return Promise.resolve();
    return addCandidate.call(this, candidate, ...rest);
  };
})();
"""


SERIOUS = {"serious", "critical"}


def serious_violations(page: Page) -> list[dict[str, Any]]:
    """What axe finds at serious or critical impact, shadow roots included."""
    results = Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "nodes": [node["target"] for node in violation["nodes"]],
        }
        for violation in violations
        if violation["impact"] in SERIOUS
    ]


def all_text(page: Page) -> str:
    """Every text the page shows, the lobby's shadow root included."""
    text: str = page.evaluate(
        """() => {
          const parts = [document.body.innerText];
          for (const host of document.querySelectorAll("session-lobby")) {
            if (host.shadowRoot) parts.push(host.shadowRoot.textContent);
          }
          return parts.join("\\n");
        }"""
    )
    return text


# Package scope: Playwright's sync API keeps an event loop running in the main
# thread while the browser is open, and async tests after these need it gone.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        unavailable("Chromium", FileNotFoundError(CHROMIUM))
    with sync_playwright() as playwright:
        # The call's tests need a camera and a microphone: Chromium's fake ones,
        # granted without a prompt. Loopback candidates keep calls on 127.0.0.1.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                "--allow-loopback-in-peer-connection",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class LiveServer:
    process: ServerProcess

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        return httpx.request(
            method, self.base_url + path, headers=headers, timeout=10, **kwargs
        )

    def create_session(
        self,
        session_id: str,
        *,
        starts_in_s: float,
        duration_s: int = 600,
        lobby_lead_s: int = 300,
        booking_status: str = "confirmed",
    ) -> dict[str, Any]:
        starts_at_ms = int((time.time() + starts_in_s) * 1000)
        response = self.api(
            "POST",
            "/api/sessions",
            json={
                "id": session_id,
                # Users of their own: no other test's lobby opens on their pages.
                "client_id": f"client-{session_id}",
                "companion_id": f"companion-{session_id}",
                "starts_at": to_iso(starts_at_ms),
                "duration_s": duration_s,
                "lobby_lead_s": lobby_lead_s,
                "booking_status": booking_status,
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def token(self, user_id: str) -> str:
        response = self.api("POST", "/api/tokens", json={"user_id": user_id})
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def link(self, session: dict[str, Any], role: str, path: str | None = None) -> str:
        """A sign-in link for one participant of `session`, to its page or `path`."""
        user_id = session["participants"][role]["user_id"]
        path = path or f"/sessions/{session['id']}"
        return f"{self.base_url}{path}?access_token={self.token(user_id)}"


def _live_server(tmp_path: Path, **extra: str) -> Iterator[LiveServer]:
    env = server_env(f"sqlite+aiosqlite:///{tmp_path / 'web.db'}", **extra)
    process = ServerProcess(env, tmp_path)
    process.start()
    try:
        yield LiveServer(process)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A development node on SQLite with short no-show and warning times."""
    yield from _live_server(
        tmp_path_factory.mktemp("web"),
        SESSIONCLOCK_ENV="development",
        SESSIONCLOCK_NO_SHOW_S="3",
        SESSIONCLOCK_SWEEP_INTERVAL_S="1",
    )


@pytest.fixture(scope="module")
def production_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    yield from _live_server(tmp_path_factory.mktemp("web-production"))


class Participants:
    """Pages in browser contexts of their own, one per participant."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self._contexts: list[BrowserContext] = []
        self.errors: list[str] = []
        self.console: list[str] = []

    def open(
        self,
        url: str,
        *,
        locale: str = "en-US",
        skew_ms: int = 0,
        width: int = 1280,
        notifications: bool = False,
        loopback_only: bool = False,
    ) -> Page:
        context = self._browser.new_context(
            locale=locale, viewport={"width": width, "height": 900}
        )
        self._contexts.append(context)
        if skew_ms:
            context.add_init_script(SKEW_SCRIPT % skew_ms)
        if notifications:
            context.grant_permissions(["notifications"])
            context.add_init_script(NOTIFICATION_SCRIPT)
        if loopback_only:
            context.add_init_script(LOOPBACK_ONLY_SCRIPT)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        label = f"page {len(self._contexts)}"
        page.on("console", lambda message: self._console(label, message))
        page.goto(url)
        return page

    def _console(self, label: str, message: ConsoleMessage) -> None:
        self.console.append(f"{label} {message.type}: {message.text}")
        if message.type == "error":
            self.errors.append(message.text)

    def close(self) -> None:
        for context in self._contexts:
            context.close()


@pytest.fixture
def participants(browser: Browser) -> Iterator[Participants]:
    opened = Participants(browser)
    yield opened
    opened.close()
