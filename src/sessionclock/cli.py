"""The `sessionclock` command: serve, migrate, cleanup, token, session create, demo."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from urllib.parse import quote

import uvicorn
from sqlalchemy.engine import make_url

from sessionclock import __version__
from sessionclock.collector import Collector
from sessionclock.constants import (
    GC_FREEZE_INTERVAL_S,
    GC_FULL_EVERY,
    TOKEN_DEFAULT_TTL_S,
    TOKEN_MAX_TTL_S,
    WS_MAX_MESSAGE_BYTES,
)
from sessionclock.core.clock import SystemClock, to_epoch_ms, to_iso
from sessionclock.core.session import Booking, BookingStatus, Session, snapshot
from sessionclock.errors import SessionClockError
from sessionclock.http.app import create_app
from sessionclock.logs import configure_logging
from sessionclock.runtime import Runtime, open_runtime
from sessionclock.settings import Settings, load_settings
from sessionclock.storage.database import create_engine, migrate

DEMO_CLIENT = "demo-client"
DEMO_COMPANION = "demo-companion"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings)
        result: int = args.run(settings, args)
        return result
    except SessionClockError as error:
        print(f"sessionclock: {error.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionclock",
        description="One clock and one lobby for booked 1:1 video sessions.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTP server")
    _add_bind(serve)
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo", help="create a session whose lobby opens soon, print links, serve"
    )
    _add_bind(demo)
    demo.set_defaults(run=_demo)

    commands.add_parser(
        "migrate", help="bring the database schema up to date"
    ).set_defaults(run=_migrate)
    commands.add_parser(
        "cleanup", help="run cleanup once and print the result"
    ).set_defaults(run=_cleanup)

    token = commands.add_parser("token", help="print a participant token")
    token.add_argument("user_id")
    token.add_argument(
        "--ttl-s",
        type=_bounded_int(1, TOKEN_MAX_TTL_S),
        default=TOKEN_DEFAULT_TTL_S,
        help=f"lifetime in seconds, 1 to {TOKEN_MAX_TTL_S}",
    )
    token.set_defaults(run=_token)

    session = commands.add_parser("session", help="manage sessions")
    session_commands = session.add_subparsers(required=True, metavar="ACTION")
    create = session_commands.add_parser("create", help="create a session")
    create.add_argument("--id", dest="session_id")
    create.add_argument("--client", required=True, help="the client's user id")
    create.add_argument("--companion", required=True, help="the companion's user id")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--starts-at", type=datetime.fromisoformat, help="ISO 8601 with zone"
    )
    when.add_argument("--starts-in-s", type=int, help="seconds from now")
    create.add_argument("--duration-s", type=int, default=1800)
    create.add_argument("--lobby-lead-s", type=int)
    create.add_argument("--pending", action="store_true", help="booking_status pending")
    create.set_defaults(run=_create_session)
    return parser


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    return parse


def _add_bind(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    collector = Collector(interval_s=GC_FREEZE_INTERVAL_S, full_every=GC_FULL_EVERY)
    app = create_app(settings, collector=collector)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        proxy_headers=True,
        server_header=False,
        # Protocol pings find dead peers; frames over the cap close with 1009.
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        ws_max_size=WS_MAX_MESSAGE_BYTES,
        # No permessage-deflate: its zlib state costs about 45 KiB per socket, and
        # compressing every frame costs CPU, for frames of a few hundred bytes.
        ws_per_message_deflate=False,
        # Event streams never end by themselves: give them 5 s, then close them.
        timeout_graceful_shutdown=5,
    )
    return 0


def _migrate(settings: Settings, _args: argparse.Namespace) -> int:
    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print("schema is up to date")
    return 0


def _cleanup(settings: Settings, _args: argparse.Namespace) -> int:
    async def run(runtime: Runtime) -> None:
        result = await runtime.service.cleanup("cli")
        print(
            json.dumps(
                {
                    "expired": result.expired,
                    "purged": result.purged,
                    "ran_at": to_iso(result.ran_at_ms),
                }
            )
        )

    _with_runtime(settings, run)
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    async def run(runtime: Runtime) -> None:
        issued = runtime.issuer.issue(args.user_id, args.ttl_s)
        print(issued.token)

    _with_runtime(settings, run)
    return 0


def _create_session(settings: Settings, args: argparse.Namespace) -> int:
    async def run(runtime: Runtime) -> None:
        now_ms = runtime.clock.now_ms()
        if args.starts_at is not None:
            starts_at_ms = to_epoch_ms(args.starts_at)
        else:
            starts_at_ms = now_ms + args.starts_in_s * 1000
        lead_s = (
            settings.lobby_lead_s if args.lobby_lead_s is None else args.lobby_lead_s
        )
        booking = Booking(
            client_id=args.client,
            companion_id=args.companion,
            starts_at_ms=starts_at_ms,
            ends_at_ms=starts_at_ms + args.duration_s * 1000,
            lobby_lead_s=lead_s,
            booking_status=BookingStatus.PENDING
            if args.pending
            else BookingStatus.CONFIRMED,
        )
        session, _created = await runtime.service.create(args.session_id, booking)
        print(json.dumps(snapshot(session, runtime.clock.now_ms()), indent=2))

    _with_runtime(settings, run)
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    base_url = (settings.public_url or f"http://{args.host}:{args.port}").rstrip("/")

    async def prepare(runtime: Runtime) -> None:
        # A lobby that opens in 30 s, a start a minute later, five minutes of call.
        now_ms = SystemClock().now_ms()
        lead_s = 60
        starts_at_ms = now_ms + (30 + lead_s) * 1000
        booking = Booking(
            client_id=DEMO_CLIENT,
            companion_id=DEMO_COMPANION,
            starts_at_ms=starts_at_ms,
            ends_at_ms=starts_at_ms + 300 * 1000,
            lobby_lead_s=lead_s,
            booking_status=BookingStatus.PENDING,
        )
        session, _ = await runtime.service.create(None, booking)
        _print_demo(runtime, session, base_url)

    _with_runtime(settings, prepare)
    return _serve(settings, args)


def _print_demo(runtime: Runtime, session: Session, base_url: str) -> None:
    lines = [
        "",
        "sessionclock demo",
        f"  database   {make_url(runtime.settings.database_url).render_as_string()}",
        f"  session    {session.id} (booking pending until the companion is ready)",
        f"  lobby      opens {to_iso(session.lobby_opens_at_ms)}",
        f"  call       {to_iso(session.starts_at_ms)} to {to_iso(session.ends_at_ms)}",
        "",
        "Sign-in links (open each in its own browser or private window):",
    ]
    for user_id, role in ((DEMO_CLIENT, "client"), (DEMO_COMPANION, "companion")):
        token = quote(runtime.issuer.issue(user_id, 86_400).token)
        link = f"{base_url}/sessions/{session.id}?access_token={token}"
        lines.append(f"  {role:<10} {link}")
    lines += [
        "",
        f"Their sessions: {base_url}/ (the lobby opens there on its own)",
        f"Debug controls: {base_url}/debug",
        "Or mark a participant ready through the API once the lobby is open:",
        f"  curl -X POST -H 'Content-Type: application/json' -d '{{\"ready\": true}}' "
        f"'{base_url}/api/sessions/{session.id}/ready?access_token=<its token>'",
        f"API reference: {base_url}/docs",
        "",
    ]
    print("\n".join(lines), flush=True)


def _with_runtime(
    settings: Settings, work: Callable[[Runtime], Awaitable[None]]
) -> None:
    async def run() -> None:
        async with open_runtime(settings, run_scheduler=False) as runtime:
            # What startup loaded lives until the command exits. Frozen, it is left
            # out of the full collections the work itself sets off: cleanup builds
            # 100,000 sessions, and each such pass over the startup heap took
            # about 100 ms.
            gc.freeze()
            await work(runtime)

    asyncio.run(run())
