"""Strapi's answers are untrusted: the client checks shapes, sizes and time."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sessionclock.bookings.strapi.client import StrapiClient
from sessionclock.constants import STRAPI_MAX_PAGE_SIZE
from sessionclock.errors import BookingSourceUnavailable

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler, timeout_s: float = 5) -> StrapiClient:
    return StrapiClient(
        "http://strapi.test/",
        "api-token",
        "bookings",
        timeout_s=timeout_s,
        transport=httpx.MockTransport(handler),
    )


async def _page(client: StrapiClient, page_size: int = 100) -> Any:
    try:
        return await client.bookings(
            page=1,
            page_size=page_size,
            updated_since_ms=None,
            starts_field="startsAt",
            starts_from_ms=None,
            populate={},
        )
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(httpx.Response(500, text="boom"), "got 500", id="status"),
        pytest.param(httpx.Response(200, text="<html>"), "expected JSON", id="html"),
        pytest.param(httpx.Response(200, json=[1, 2]), "a JSON object", id="list"),
        pytest.param(
            httpx.Response(200, json={"data": {"id": 1}}), "a list in 'data'", id="data"
        ),
        pytest.param(
            httpx.Response(200, json={"data": [], "meta": {"pagination": {}}}),
            "pageCount",
            id="no-pagination",
        ),
    ],
)
async def test_page_with_a_wrong_answer_is_refused(
    answer: httpx.Response, expected: str
) -> None:
    """A page that is not what the REST API documents raises, saying what was wrong."""
    with pytest.raises(BookingSourceUnavailable, match=expected):
        await _page(_client(lambda _request: answer))


async def test_page_size_is_capped_both_ways() -> None:
    """The client never asks for, nor keeps, more than the largest page."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["pagination[pageSize]"])
        entries = [{"documentId": f"d{i}"} for i in range(3 * STRAPI_MAX_PAGE_SIZE)]
        return httpx.Response(
            200, json={"data": entries, "meta": {"pagination": {"pageCount": 1}}}
        )

    page = await _page(_client(handler), page_size=10_000)
    assert asked == [str(STRAPI_MAX_PAGE_SIZE)]
    assert len(page.entries) == STRAPI_MAX_PAGE_SIZE


async def test_silent_strapi_times_out() -> None:
    """A Strapi that takes the connection and never answers fails the call in time."""
    with socket.socket() as silent:
        # The kernel completes the handshake from the backlog; nobody ever answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = StrapiClient(
            f"http://127.0.0.1:{port}", "api-token", "bookings", timeout_s=0.3
        )
        started = time.monotonic()
        with pytest.raises(BookingSourceUnavailable, match="Timeout"):
            await _page(client)
        assert time.monotonic() - started < 3


async def test_unreachable_strapi_is_unavailable() -> None:
    """A refused connection is reported as the source being unavailable."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(BookingSourceUnavailable, match="ConnectError"):
        await _page(_client(refuse))


async def test_me_without_a_user_is_none() -> None:
    """A JWT that Strapi refuses names nobody; the API token is not sent along."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401, json={"error": {"status": 401}})

    client = _client(handler)
    assert await client.me("a.b.c") is None
    await client.aclose()
    assert seen == ["Bearer a.b.c"]


async def test_update_of_a_missing_booking_is_false() -> None:
    """A write-back to a booking Strapi no longer has reports it, without raising."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"data": {"outcome": "completada"}}
        return httpx.Response(404, json={"data": None})

    client = _client(handler)
    assert not await client.update("gone", {"outcome": "completada"})
    await client.aclose()
