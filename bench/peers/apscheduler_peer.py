"""The APScheduler peer: one date job per session, run at `ends_at` on asyncio.

At start every live session gets an `AsyncIOScheduler` job with a `DateTrigger` at
its end, in the default in-memory job store; each job expires its own session (one
statement per job, as a job function naturally does) and pushes. The default
`misfire_grace_time` of 1 s would silently drop jobs that the loop starts later than
that; it is raised to 60 s here, as a team that wants none missed would.

    python bench/peers/apscheduler_peer.py --port N --database-dsn DSN
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import uvloop
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers.expiry_base import LIVE_SESSIONS, ExpiryPeer, arguments, serve_peer


def main() -> None:
    args = arguments(__doc__.split("\n")[0]).parse_args()

    async def schedule(peer: ExpiryPeer) -> str:
        scheduler = AsyncIOScheduler(
            timezone=UTC, job_defaults={"misfire_grace_time": 60}
        )

        async def expire_one(session_id: str) -> None:
            await peer.expire([session_id])

        rows = await peer.pool.fetch(LIVE_SESSIONS)
        for row in rows:
            run_at = datetime.fromtimestamp(row["ends_at_ms"] / 1000, tz=UTC)
            scheduler.add_job(
                expire_one, DateTrigger(run_at), args=[row["id"]], id=row["id"]
            )
        scheduler.start()
        peer.background = scheduler
        return f"{len(rows)} jobs"

    # The event loop sessionclock runs on under uvicorn, so that only designs differ.
    uvloop.run(serve_peer(args, schedule))


if __name__ == "__main__":
    main()
