"""The Redis peer: one key per session that expires at `ends_at`, and its notice.

At start every live session gets a key with `PXAT ends_at_ms`; the peer subscribes
to `__keyevent@0__:expired` on a Redis started with `notify-keyspace-events Ex`.
Redis sends the notice when it actually deletes the key: when a client touches it,
or when its active expiry cycle (`hz` times a second, sampling keys with a time
budget) finds it. Notices are drained in batches, so that sessions ending together
share one database write, as they do in sessionclock.

    python bench/peers/redis_expiry.py --port N --database-dsn DSN --redis-url URL
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import redis.asyncio as redis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.peers.expiry_base import LIVE_SESSIONS, ExpiryPeer, arguments, serve_peer

KEY_PREFIX = "bench:ends:"
_CHUNK = 5000


def main() -> None:
    parser = arguments(__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()

    async def schedule(peer: ExpiryPeer) -> str:
        client = redis.from_url(args.redis_url)
        await client.config_set("notify-keyspace-events", "Ex")
        pubsub = client.pubsub()
        await pubsub.subscribe("__keyevent@0__:expired")
        due: asyncio.Queue[str] = asyncio.Queue()

        async def listen() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    key = message["data"].decode()
                    if key.startswith(KEY_PREFIX):
                        due.put_nowait(key.removeprefix(KEY_PREFIX))

        async def expire_batches() -> None:
            while True:
                batch = [await due.get()]
                while not due.empty() and len(batch) < _CHUNK:
                    batch.append(due.get_nowait())
                await peer.expire(batch)

        rows = await peer.pool.fetch(LIVE_SESSIONS)
        for start in range(0, len(rows), _CHUNK):
            async with client.pipeline(transaction=False) as pipe:
                for row in rows[start : start + _CHUNK]:
                    pipe.set(KEY_PREFIX + row["id"], b"1", pxat=row["ends_at_ms"])
                await pipe.execute()
        peer.background = asyncio.gather(listen(), expire_batches())
        return f"{len(rows)} keys"

    # The event loop sessionclock runs on under uvicorn, so that only designs differ.
    uvloop.run(serve_peer(args, schedule))


if __name__ == "__main__":
    main()
