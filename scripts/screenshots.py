"""Take the screenshots in docs/screenshots: lobby, call and ending, en and es,
desktop and phone width, from a real server and Debian's Chromium.

    .venv/bin/python scripts/screenshots.py

It starts its own development server on a free port in a temporary folder and
stops it again; nothing else is touched.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import ServerProcess, server_env  # noqa: E402
from tests.web.conftest import (  # noqa: E402
    CHROMIUM,
    LOOPBACK_ONLY_SCRIPT,
    LiveServer,
)

OUT = ROOT / "docs" / "screenshots"
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}


def shoot(page: Page, name: str) -> None:
    page.wait_for_timeout(400)  # Let the countdown settle on a whole second.
    page.screenshot(path=OUT / f"{name}.png", full_page=True)
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        env = server_env(
            f"sqlite+aiosqlite:///{Path(folder) / 'shots.db'}",
            SESSIONCLOCK_ENV="development",
            SESSIONCLOCK_SWEEP_INTERVAL_S="1",
            SESSIONCLOCK_NO_SHOW_S="2",
        )
        process = ServerProcess(env, Path(folder))
        process.start()
        server = LiveServer(process)
        try:
            with sync_playwright() as playwright:
                # Chromium's fake camera shows a test pattern in the call.
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM,
                    args=[
                        "--use-fake-ui-for-media-stream",
                        "--use-fake-device-for-media-stream",
                        "--allow-loopback-in-peer-connection",
                    ],
                )
                for language, locale in (("en", "en-GB"), ("es", "es-ES")):
                    for size, (width, height) in SIZES.items():
                        take_all(server, browser, language, locale, size, width, height)
                browser.close()
        finally:
            process.stop()


def take_all(
    server: LiveServer,
    browser: object,
    language: str,
    locale: str,
    size: str,
    width: int,
    height: int,
) -> None:
    stamp = f"{language}-{size}-{int(time.time())}"
    session = server.create_session(
        f"shot-{stamp}", starts_in_s=272, duration_s=1800, booking_status="pending"
    )
    ended = server.create_session(f"shot-end-{stamp}", starts_in_s=8, duration_s=1800)

    def open_as(role: str, target: dict[str, object], path: str | None = None) -> Page:
        context = browser.new_context(  # type: ignore[attr-defined]
            locale=locale, viewport={"width": width, "height": height}
        )
        context.add_init_script(LOOPBACK_ONLY_SCRIPT)
        page: Page = context.new_page()
        page.goto(server.link(target, role, path))
        return page

    # The lobby dialog on the home page, the client ready, the companion not yet.
    companion = open_as("companion", session, "/")
    home = open_as("client", session, "/")
    dialog = home.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=15_000)
    home.locator("session-lobby [data-action='ready']").click()
    expect(home.locator("session-lobby [aria-pressed='true']")).to_be_visible()
    shoot(home, f"lobby-{language}-{size}")

    # Both ready: the call opens on its own.
    companion.locator("session-lobby [data-action='ready']").click()
    home.wait_for_url("**/sessions/*", timeout=10_000)
    expect(home.locator("session-lobby [data-call]")).to_be_visible()
    home.wait_for_function(
        """() => document.querySelector("session-lobby")?.call?.peer?.state
            === "connected" && document.querySelector("session-lobby").shadowRoot
            .querySelector("video.remote").videoWidth > 0""",
        timeout=20_000,
    )
    shoot(home, f"call-{language}-{size}")

    # A session where only the client came: a no-show two seconds after the start.
    ending = open_as("client", ended)
    ending.locator("session-lobby [data-action='ready']").click()
    expect(ending.locator("session-lobby [data-ended]")).to_be_visible(timeout=20_000)
    shoot(ending, f"ending-{language}-{size}")
    for page in (companion, home, ending):
        page.context.close()


if __name__ == "__main__":
    main()
