"""Strapi 5's REST API as sessionclock uses it: bookings, users-permissions' `me`.

Every answer is checked before it is used: the status code, that the body is JSON,
that `data` and `meta.pagination` have the shapes the REST API documents. A
wrong answer raises BookingSourceUnavailable with what was expected; the entries
inside a page are checked one by one later, by the field map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from sessionclock.constants import STRAPI_MAX_PAGE_SIZE
from sessionclock.core.clock import to_iso
from sessionclock.errors import BookingSourceUnavailable

_SOURCE = "strapi"
_MAX_BODY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Page:
    """One page of entries and whether another follows."""

    entries: list[Any]
    page: int
    page_count: int


class StrapiClient:
    """Calls one Strapi with its API token; every call has a timeout."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        collection: str,
        *,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.collection = collection
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )
        # The participants' JWTs go without the API token.
        self._anonymous = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._anonymous.aclose()

    async def bookings(
        self,
        *,
        page: int,
        page_size: int,
        updated_since_ms: int | None,
        starts_field: str,
        starts_from_ms: int | None,
        populate: dict[str, str],
    ) -> Page:
        """One page of bookings, oldest change first."""
        params: dict[str, str] = {
            "pagination[page]": str(page),
            "pagination[pageSize]": str(min(page_size, STRAPI_MAX_PAGE_SIZE)),
            "sort[0]": "updatedAt:asc",
            "sort[1]": "id:asc",
            **populate,
        }
        if updated_since_ms is not None:
            params["filters[updatedAt][$gte]"] = to_iso(updated_since_ms)
        if starts_from_ms is not None:
            params[f"filters[{starts_field}][$gte]"] = to_iso(starts_from_ms)
        body = await self._json(
            self._http, "GET", f"/api/{self.collection}", params=params
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise self._wrong("a list in 'data'", data)
        pagination = _dict(_dict(body.get("meta")).get("pagination"))
        page_count = pagination.get("pageCount")
        if isinstance(page_count, bool) or not isinstance(page_count, int):
            raise self._wrong("an integer meta.pagination.pageCount", page_count)
        return Page(data[:STRAPI_MAX_PAGE_SIZE], page, max(0, page_count))

    async def booking(self, key: str, populate: dict[str, str]) -> Any | None:
        """One booking by its id, or None when Strapi has no such entry."""
        body = await self._json(
            self._http,
            "GET",
            f"/api/{self.collection}/{key}",
            params=populate,
            missing_ok=True,
        )
        if not body:
            return None
        return body.get("data")

    async def update(self, key: str, data: dict[str, Any]) -> bool:
        """Set some fields of one booking; False when Strapi has no such entry."""
        body = await self._json(
            self._http,
            "PUT",
            f"/api/{self.collection}/{key}",
            json={"data": data},
            missing_ok=True,
        )
        return bool(body)

    async def me(self, jwt: str) -> Any | None:
        """The users-permissions user a JWT belongs to; None when Strapi refuses it."""
        try:
            response = await self._anonymous.get(
                "/api/users/me", headers={"Authorization": f"Bearer {jwt}"}
            )
        except httpx.HTTPError as error:
            raise BookingSourceUnavailable(
                _SOURCE, f"GET /api/users/me: {type(error).__name__}"
            ) from None
        if response.status_code in (400, 401, 403):
            return None
        return self._body(response, "GET /api/users/me")

    async def _json(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise BookingSourceUnavailable(
                _SOURCE, f"{method} {path}: {type(error).__name__}: {error}"
            ) from None
        if missing_ok and response.status_code == 404:
            return {}
        return self._body(response, f"{method} {path}")

    def _body(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if not response.is_success:
            raise BookingSourceUnavailable(
                _SOURCE, f"{what}: expected a 2xx answer, got {response.status_code}"
            )
        if len(response.content) > _MAX_BODY_BYTES:
            raise BookingSourceUnavailable(
                _SOURCE, f"{what}: answer of {len(response.content)} bytes is too big"
            )
        try:
            body = response.json()
        except ValueError:
            raise BookingSourceUnavailable(
                _SOURCE, f"{what}: expected JSON, got a body that does not parse"
            ) from None
        if not isinstance(body, dict):
            raise self._wrong("a JSON object", body)
        return body

    def _wrong(self, expected: str, got: Any) -> BookingSourceUnavailable:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:80] + "…"
        return BookingSourceUnavailable(_SOURCE, f"expected {expected}, got {shown}")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
