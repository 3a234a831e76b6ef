"""Clock agreement: how close a skewed browser's estimate of the server's time gets.

A sessionclock node runs on loopback behind a proxy that delays every chunk, each
direction by its own random amount (by default 20 to 40 ms towards the server and
40 to 80 ms back: a slow, asymmetric path). In Chromium, clients whose clocks are
off by minutes run `time` exchanges over the session's socket through that proxy;
after 1, 5, 10 and 20 exchanges (20 being what a client makes when it connects) each
records the error of its estimate of the server's time. Truth is this machine's
clock, which the server and the browser share. The same page runs the npm `timesync`
library over the very same socket frames, so the two differ only in how they
estimate; sessionclock's Python client runs the same exchanges through the same
proxy.

    python bench/clock_agreement.py --trials 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Route, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import API_KEY, SECRET_KEY, ServerProcess, booking, server_env

from bench.common import log, now_ms, summary
from sessionclock.client import SessionSocket, wall_clock_ms
from sessionclock.core.clock import SystemClock
from sessionclock.credentials import TokenIssuer

PAGE_DIR = Path(__file__).parent / "peers" / "timesync"
CHROMIUM = "/usr/bin/chromium"
ESTIMATORS = ("sessionclock", "timesync")
SKEWS_MS = (-10 * 60_000, 3 * 60_000, 10 * 60_000)
COUNTS = (1, 5, 10, 20)


class DelayProxy:
    """A TCP proxy on loopback that holds each chunk for a random delay, in order."""

    def __init__(
        self,
        target_port: int,
        up_ms: tuple[float, float],
        down_ms: tuple[float, float],
        seed: int,
    ) -> None:
        self.target_port = target_port
        self.up_ms = up_ms
        self.down_ms = down_ms
        self.port = 0
        self._random = random.Random(seed)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        await asyncio.gather(
            self._pipe(client_reader, server_writer, self.up_ms),
            self._pipe(server_reader, client_writer, self.down_ms),
            return_exceptions=True,
        )

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay_ms: tuple[float, float],
    ) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            # One writer per direction, in arrival order: TCP keeps order, and
            # timers due at the same instant would not.
            while True:
                due_s, chunk = await held.get()
                await asyncio.sleep(max(0.0, due_s - loop.time()))
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
            writer.close()

        delivering = asyncio.create_task(deliver())
        try:
            while chunk := await reader.read(65536):
                held.put_nowait(
                    (loop.time() + self._random.uniform(*delay_ms) / 1000, chunk)
                )
        finally:
            held.put_nowait((loop.time(), b""))
            await delivering


def install_timesync() -> None:
    """Install the locked timesync package beside its page, once."""
    if not (PAGE_DIR / "node_modules" / "timesync").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=PAGE_DIR,
            check=True,
            timeout=300,
            stdout=subprocess.DEVNULL,
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    await asyncio.to_thread(install_timesync)
    workdir = Path(tempfile.mkdtemp(prefix="sessionclock-bench-clock-"))
    server = ServerProcess(
        server_env(f"sqlite+aiosqlite:///{workdir}/clock.db", None), workdir
    )
    server.start()
    proxy = DelayProxy(
        server.port, tuple(args.up_ms), tuple(args.down_ms), seed=args.seed
    )
    try:
        body = booking(60_000, 3600, now_ms=SystemClock().now_ms(), id="clock-bench")
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            created = await http.post("/api/sessions", json=body, headers=headers)
            created.raise_for_status()
        token = TokenIssuer(SECRET_KEY, SystemClock()).issue(body["client_id"], 7200)
        await proxy.start()
        results = {}
        for estimator in ESTIMATORS:
            results[estimator] = await _browser_run(
                args, proxy.port, token.token, estimator
            )
            log(f"clock {estimator}: {json.dumps(results[estimator])}")
        results["python client"] = await _python_run(args, proxy.port, token.token)
        log(f"clock python client: {json.dumps(results['python client'])}")
    finally:
        await proxy.stop()
        server.stop()
    mean_up = sum(args.up_ms) / 2
    mean_down = sum(args.down_ms) / 2
    return {
        "up_ms": args.up_ms,
        "down_ms": args.down_ms,
        "half_asymmetry_ms": abs(mean_down - mean_up) / 2,
        "skews_ms": list(SKEWS_MS),
        "trials_per_skew": args.trials,
        "estimators": results,
    }


async def _browser_run(
    args: argparse.Namespace, proxy_port: int, token: str, estimator: str
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{proxy_port}"

    async def timesync_bundle(route: Route) -> None:
        path = PAGE_DIR / "node_modules" / "timesync" / "dist" / "timesync.js"
        await route.fulfill(body=path.read_bytes(), content_type="text/javascript")

    config = {
        "sessionId": "clock-bench",
        "token": token,
        "estimator": estimator,
        "skewsMs": list(SKEWS_MS),
        "trials": args.trials,
        "counts": list(COUNTS),
        "pauseMs": 50,
        "concurrency": args.concurrency,
    }
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page()
            page.on("console", lambda message: log(f"browser: {message.text[-160:]}"))
            await page.route(f"{base}/bench/timesync.js", timesync_bundle)
            # Chromium opens no socket from a document that Playwright fulfilled:
            # load a real page of the server (through the proxy), then replace it.
            await page.goto(f"{base}/healthz")
            await page.set_content((PAGE_DIR / "clock.html").read_text())
            await page.wait_for_function("window.benchReady === true", timeout=30_000)
            started_ms = now_ms()
            trials = await asyncio.wait_for(
                page.evaluate("(config) => window.runBench(config)", config),
                timeout=args.timeout_s,
            )
        finally:
            await browser.close()
    errors: dict[str, dict[str, float | int]] = {}
    for count in COUNTS:
        values = [abs(float(t["errors"][str(count)])) for t in trials]
        errors[str(count)] = summary(values)
    signed = [float(t["errors"]["10"]) for t in trials]
    return {
        "abs_error_ms": errors,
        "mean_signed_error_10_ms": round(sum(signed) / len(signed), 2),
        "trials": len(trials),
        "took_s": round((now_ms() - started_ms) / 1000, 1),
    }


async def _python_run(
    args: argparse.Namespace, proxy_port: int, token: str
) -> dict[str, Any]:
    """sessionclock's Python client, its estimator, the same exchanges and proxy."""
    semaphore = asyncio.Semaphore(args.concurrency)

    async def trial(skew_ms: float) -> dict[str, float]:
        def skewed_ms() -> float:
            return wall_clock_ms() + skew_ms

        errors = {}
        async with semaphore:
            socket = await SessionSocket.connect(
                f"http://127.0.0.1:{proxy_port}", "clock-bench", token, clock=skewed_ms
            )
            try:
                for count in range(1, max(COUNTS) + 1):
                    await socket.sync_clock(exchanges=1, pause_s=0.05)
                    if count in COUNTS:
                        errors[str(count)] = socket.server_now_ms() - wall_clock_ms()
            finally:
                await socket.close()
        return errors

    started_ms = now_ms()
    jobs = [skew for skew in SKEWS_MS for _ in range(args.trials)]
    trials = await asyncio.gather(*(trial(skew) for skew in jobs))
    return {
        "abs_error_ms": {
            str(count): summary([abs(t[str(count)]) for t in trials])
            for count in COUNTS
        },
        "mean_signed_error_10_ms": round(sum(t["10"] for t in trials) / len(trials), 2),
        "trials": len(trials),
        "took_s": round((now_ms() - started_ms) / 1000, 1),
    }


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=30, help="per clock skew")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--up-ms", type=float, nargs=2, default=[20.0, 40.0])
    parser.add_argument("--down-ms", type=float, nargs=2, default=[40.0, 80.0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout-s", type=float, default=300.0)
    return parser


def main() -> None:
    print(json.dumps(asyncio.run(run(parser().parse_args())), indent=2))


if __name__ == "__main__":
    main()
