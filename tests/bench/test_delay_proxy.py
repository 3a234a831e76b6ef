"""The clock benchmark's delay proxy: every byte arrives, late, in order."""

from __future__ import annotations

import asyncio
import time

from bench.clock_agreement import DelayProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(4096):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_proxy_keeps_order_and_adds_both_delays() -> None:
    """Many small writes come back whole, in order, after both directions' delays."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = DelayProxy(echo.sockets[0].getsockname()[1], (5, 15), (10, 20), seed=3)
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        sent = b"".join(f"{index:05d};".encode() for index in range(500))
        started_s = time.perf_counter()
        for start in range(0, len(sent), 6):
            writer.write(sent[start : start + 6])
            await writer.drain()
            await asyncio.sleep(0)
        first = await asyncio.wait_for(reader.readexactly(6), 10)
        took_ms = (time.perf_counter() - started_s) * 1000
        rest = await asyncio.wait_for(reader.readexactly(len(sent) - 6), 10)
        writer.close()
        await writer.wait_closed()
        # The close travels through the proxy's delays too: let every connection
        # end before the loop does, or their transports outlive it.
        await asyncio.sleep(0.3)
    finally:
        await proxy.stop()
        echo.close()
        await echo.wait_closed()

    assert first + rest == sent
    assert took_ms >= 15
