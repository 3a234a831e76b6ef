"""The cron peer: the seed system's design, one sweep of the database per period.

Every `--period-s` (300 in the seed system, whose cron called its cleanup endpoint
every five minutes) one statement expires every live session whose end has passed,
and the push follows. Nothing is held in memory between sweeps, so a session ends
late by the time left until the next sweep plus the sweep itself: on average half a
period. `--phase-s` delays the first sweep, since cron's clock knows nothing of
when sessions end.

    python bench/peers/cron_sweep.py --port N --database-dsn DSN --period-s 300
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers.expiry_base import ExpiryPeer, arguments, serve_peer


def main() -> None:
    parser = arguments(__doc__.split("\n")[0])
    parser.add_argument("--period-s", type=float, default=300.0)
    parser.add_argument("--phase-s", type=float, default=0.0)
    args = parser.parse_args()

    async def schedule(peer: ExpiryPeer) -> str:
        async def sweep_forever() -> None:
            next_s = time.monotonic() + args.phase_s
            while True:
                await asyncio.sleep(max(0.0, next_s - time.monotonic()))
                started_s = time.monotonic()
                expired = await peer.expire_due()
                took_ms = (time.monotonic() - started_s) * 1000
                print(f"swept {expired} in {took_ms:.1f} ms", file=sys.stderr)
                next_s += args.period_s

        peer.background = asyncio.create_task(sweep_forever())
        return f"a sweep every {args.period_s} s"

    # The event loop sessionclock runs on under uvicorn, so that only designs differ.
    uvloop.run(serve_peer(args, schedule))


if __name__ == "__main__":
    main()
