"""The pages over HTTP: sign-in links, cookies, page shells, languages, catalogues.

Pages are tested in process on SQLite and PostgreSQL, with a manual clock; the
catalogue checks read the JSON catalogues and the browser modules from the package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sessionclock.constants import LANGUAGE_COOKIE, LANGUAGES, PAGE_TOKEN_COOKIE
from sessionclock.core.session import Role, Status
from sessionclock.web.catalogue import CATALOGUE_DIR, catalogue, negotiate
from tests.conftest import BACKENDS, Api, Backend, make_backend
from tests.helpers import API_KEY, CLIENT, COMPANION, MINUTE_MS, STRANGER, booking

ApiFactory = Callable[..., Awaitable[Api]]

SESSION = "b-1"
STATIC_DIR = CATALOGUE_DIR.parent
CONFIG = re.compile(
    r'<script type="application/json" id="sessionclock-page">(.*?)</script>', re.S
)
MAIN = re.compile(r"<main[^>]*>(.*?)</main>", re.S)
SPANISH = "es-ES,es;q=0.9,en;q=0.5"


@pytest.fixture(params=BACKENDS[:2])
def backend(request: pytest.FixtureRequest) -> Backend:
    """SQLite and PostgreSQL: pages read sessions but never touch Redis."""
    return make_backend(request)


async def create(api: Api, session_id: str = SESSION, **extra: Any) -> None:
    response = await api.client.post(
        "/api/sessions", json=booking(id=session_id, **extra), headers=api.platform
    )
    assert response.status_code == 201, response.text


def token_for(api: Api, user_id: str, ttl_s: int = 3600) -> str:
    return api.runtime.issuer.issue(user_id, ttl_s).token


def sign_in(api: Api, user_id: str) -> str:
    """Put a participant's token in the client's cookie jar, as a link would."""
    token = token_for(api, user_id)
    api.client.cookies.set(PAGE_TOKEN_COOKIE, token)
    return token


def set_cookies(response: httpx.Response) -> SimpleCookie:
    """Every cookie the response sets or deletes, with its attributes."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


def page_config(response: httpx.Response) -> dict[str, Any]:
    """The JSON a page shell hands to its module."""
    found = CONFIG.search(response.text)
    assert found is not None, response.text
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def main_of(response: httpx.Response) -> str:
    """What a page shows: its `<main>`, without the catalogue in the page's JSON."""
    found = MAIN.search(response.text)
    assert found is not None, response.text
    return found.group(1)


# Sign-in links


async def test_link_on_home_sets_cookie_and_redirects(api: Api) -> None:
    """A valid link on `/` answers 303 to `/` with an HttpOnly, Lax token cookie."""
    token = token_for(api, CLIENT)

    response = await api.client.get(f"/?access_token={quote(token)}")

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert response.headers["cache-control"] == "no-store"
    cookie = set_cookies(response)[PAGE_TOKEN_COOKIE]
    assert cookie.value == token
    assert cookie["httponly"] is True
    assert cookie["samesite"].lower() == "lax"
    assert cookie["path"] == "/"
    assert int(cookie["max-age"]) == 3600


async def test_link_keeps_other_parameters_and_drops_token(api: Api) -> None:
    """The redirect keeps every other query parameter and loses `access_token`."""
    token = token_for(api, CLIENT)

    response = await api.client.get(
        "/", params={"debug": "1", "access_token": token, "tab": "a b"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/?debug=1&tab=a+b"
    assert token not in response.headers["location"]
    assert set_cookies(response)[PAGE_TOKEN_COOKIE].value == token


async def test_link_on_session_page_redirects_to_that_page(api: Api) -> None:
    """A link to a session page signs in and redirects to the same page."""
    await create(api)
    token = token_for(api, COMPANION)

    response = await api.client.get(f"/sessions/{SESSION}?access_token={token}")

    assert response.status_code == 303
    assert response.headers["location"] == f"/sessions/{SESSION}"
    assert set_cookies(response)[PAGE_TOKEN_COOKIE].value == token
    followed = await api.client.get(response.headers["location"])
    assert followed.status_code == 200, followed.text
    assert page_config(followed)["user_id"] == COMPANION


async def test_link_cookie_lasts_as_long_as_token(api: Api) -> None:
    """The cookie's Max-Age is what remains of the token's life on the server clock."""
    token = token_for(api, CLIENT, ttl_s=600)
    api.clock.advance(MINUTE_MS)

    response = await api.client.get(f"/?access_token={token}")

    assert int(set_cookies(response)[PAGE_TOKEN_COOKIE]["max-age"]) == 540


@pytest.mark.parametrize("path", ["/", f"/sessions/{SESSION}"])
async def test_link_with_bad_token_redirects_to_expired(api: Api, path: str) -> None:
    """A token that is not one of ours redirects to `?signin=expired`, no cookie."""
    response = await api.client.get(f"{path}?access_token=not-a-token")

    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?signin=expired"
    assert set_cookies(response)[PAGE_TOKEN_COOKIE].value == ""
    assert int(set_cookies(response)[PAGE_TOKEN_COOKIE]["max-age"]) == 0


async def test_link_with_expired_token_shows_expired_page(api: Api) -> None:
    """An expired link lands on a 401 page that says the link is no longer valid."""
    await create(api)
    token = token_for(api, CLIENT, ttl_s=60)
    api.clock.advance(2 * MINUTE_MS)

    response = await api.client.get(f"/sessions/{SESSION}?access_token={token}&x=1")
    landed = await api.client.get(response.headers["location"])

    assert response.status_code == 303
    assert response.headers["location"] == f"/sessions/{SESSION}?x=1&signin=expired"
    assert set_cookies(response)[PAGE_TOKEN_COOKIE].value == ""
    assert landed.status_code == 401
    assert "no longer valid" in main_of(landed)
    assert page_config(landed)["page"] == "signin"
    assert page_config(landed)["user_id"] is None


async def test_link_with_platform_key_is_refused(api: Api) -> None:
    """The platform key in `access_token` is refused like a bad token, never kept."""
    response = await api.client.get(f"/?access_token={quote(API_KEY)}")

    assert response.status_code == 303
    assert response.headers["location"] == "/?signin=expired"
    assert API_KEY not in response.headers.get("set-cookie", "")
    assert set_cookies(response)[PAGE_TOKEN_COOKIE].value == ""


async def test_link_cookie_is_secure_behind_https(
    api_factory: ApiFactory, backend: Backend
) -> None:
    """With an https public URL the token and language cookies are Secure."""
    api = await api_factory(backend, public_url="https://clock.example")
    token = token_for(api, CLIENT)

    response = await api.client.get(f"/?access_token={token}&lang=es")

    assert response.status_code == 303
    assert set_cookies(response)[PAGE_TOKEN_COOKIE]["secure"] is True
    assert set_cookies(response)[LANGUAGE_COOKIE]["secure"] is True


async def test_link_cookie_is_not_secure_over_plain_http(api: Api) -> None:
    """Without https anywhere the cookie is not Secure, so local development works."""
    response = await api.client.get(f"/?access_token={token_for(api, CLIENT)}")

    assert not set_cookies(response)[PAGE_TOKEN_COOKIE]["secure"]


# Pages with and without the cookie


async def test_home_with_cookie_shows_english_shell(api: Api) -> None:
    """With the cookie, `/` is an English HTML shell naming the page and the user."""
    sign_in(api, CLIENT)

    response = await api.client.get("/")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert '<html lang="en">' in response.text
    config = page_config(response)
    assert config["page"] == "home"
    assert config["lang"] == "en"
    assert config["user_id"] == CLIENT
    assert config["session_id"] is None
    assert config["strings"] == catalogue("en")
    assert '<script type="module" src="/static/home.js">' in response.text


async def test_session_page_with_cookie_shows_lobby(api: Api) -> None:
    """With the cookie, a participant's session page holds a lobby for that session."""
    await create(api)
    sign_in(api, CLIENT)

    response = await api.client.get(f"/sessions/{SESSION}")

    assert response.status_code == 200, response.text
    lobby = re.search(r"<session-lobby [^>]*>", response.text)
    assert lobby is not None
    assert f'session-id="{SESSION}"' in lobby.group(0)
    assert f'user-id="{CLIENT}"' in lobby.group(0)
    config = page_config(response)
    assert config["page"] == "session"
    assert config["session_id"] == SESSION
    assert config["user_id"] == CLIENT


async def test_session_page_of_stranger_is_not_found(api: Api) -> None:
    """A stranger gets the same 404 page as for an unknown session, with no data."""
    await create(api)
    sign_in(api, STRANGER)

    stranger = await api.client.get(f"/sessions/{SESSION}")
    unknown = await api.client.get("/sessions/no-such-session")
    malformed = await api.client.get("/sessions/%20bad")

    assert stranger.status_code == unknown.status_code == malformed.status_code == 404
    assert stranger.text == unknown.text == malformed.text
    assert "Session not found" in main_of(stranger)
    assert catalogue("en")["not_found.body"] in main_of(stranger)
    assert "<session-lobby" not in stranger.text
    for secret in (SESSION, CLIENT, COMPANION):
        assert secret not in stranger.text
    assert page_config(stranger)["page"] == "not_found"


@pytest.mark.parametrize("path", ["/", f"/sessions/{SESSION}"])
async def test_page_without_cookie_asks_to_sign_in(api: Api, path: str) -> None:
    """Without a cookie a page answers 401 with the sign-in text and no user."""
    await create(api)

    response = await api.client.get(path)

    assert response.status_code == 401
    assert catalogue("en")["signin.body"] in main_of(response)
    assert "no longer valid" not in main_of(response)
    assert page_config(response)["page"] == "signin"
    assert page_config(response)["user_id"] is None
    assert "<session-lobby" not in response.text


async def test_page_with_expired_cookie_says_so_and_clears_it(api: Api) -> None:
    """A cookie whose token has expired gives the expired page and is deleted."""
    sign_in(api, CLIENT)
    api.clock.advance(61 * MINUTE_MS)

    response = await api.client.get("/")

    assert response.status_code == 401
    assert "no longer valid" in main_of(response)
    assert set_cookies(response)[PAGE_TOKEN_COOKIE].value == ""


# The API with the cookie alone


async def test_api_accepts_cookie_alone(api: Api) -> None:
    """The session API and `/api/me` take the page cookie instead of a header."""
    await create(api)
    token = token_for(api, COMPANION)
    signed = await api.client.get(f"/?access_token={token}")
    assert signed.status_code == 303

    me = await api.client.get("/api/me")
    session = await api.client.get(f"/api/sessions/{SESSION}")

    assert me.status_code == 200, me.text
    assert me.json() == {"user_id": COMPANION}
    assert session.status_code == 200, session.text
    assert session.json()["id"] == SESSION


async def test_api_without_cookie_is_unauthorized(api: Api) -> None:
    """Without a cookie or a header, `/api/me` is 401."""
    response = await api.client.get("/api/me")

    assert response.status_code == 401


async def test_api_cookie_of_stranger_sees_nothing(api: Api) -> None:
    """A stranger's cookie reads no session: 404 as with a header."""
    await create(api)
    sign_in(api, STRANGER)

    response = await api.client.get(f"/api/sessions/{SESSION}")

    assert response.status_code == 404
    assert CLIENT not in response.text


async def test_api_refuses_platform_key_in_cookie(api: Api) -> None:
    """The platform key in the page cookie is refused: it belongs in a header."""
    await create(api)
    api.client.cookies.set(PAGE_TOKEN_COOKIE, API_KEY)

    response = await api.client.get(f"/api/sessions/{SESSION}")

    assert response.status_code == 401


# Languages


async def test_accept_language_spanish_gives_spanish_page(api: Api) -> None:
    """A browser that prefers Spanish gets `lang="es"` and the Spanish strings."""
    sign_in(api, CLIENT)

    response = await api.client.get("/", headers={"Accept-Language": SPANISH})

    assert response.status_code == 200
    assert '<html lang="es">' in response.text
    assert page_config(response)["lang"] == "es"
    assert page_config(response)["strings"] == catalogue("es")
    assert catalogue("es")["home.loading"] in main_of(response)


async def test_lang_parameter_sets_cookie_and_redirects(api: Api) -> None:
    """`?lang=es` answers 303 without `lang` and keeps Spanish in a cookie."""
    response = await api.client.get("/?lang=es&tab=1")

    assert response.status_code == 303
    assert response.headers["location"] == "/?tab=1"
    cookie = set_cookies(response)[LANGUAGE_COOKIE]
    assert cookie.value == "es"
    assert cookie["samesite"].lower() == "lax"
    assert PAGE_TOKEN_COOKIE not in set_cookies(response)


async def test_language_cookie_wins_over_accept_language(api: Api) -> None:
    """Once chosen, Spanish stays even when the browser asks for English."""
    sign_in(api, CLIENT)
    await create(api)
    chosen = await api.client.get(f"/sessions/{SESSION}?lang=es")
    assert chosen.status_code == 303

    response = await api.client.get(
        chosen.headers["location"], headers={"Accept-Language": "en-GB,en"}
    )

    assert response.status_code == 200
    assert '<html lang="es">' in response.text
    assert 'lang="es"></session-lobby>' in response.text
    assert page_config(response)["strings"] == catalogue("es")


async def test_unknown_language_falls_back_to_english(api: Api) -> None:
    """An unknown `?lang` sets no cookie, and an unknown browser language is English."""
    sign_in(api, CLIENT)

    chosen = await api.client.get("/?lang=fr")
    response = await api.client.get("/", headers={"Accept-Language": "fr-FR,de"})

    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/"
    assert LANGUAGE_COOKIE not in set_cookies(chosen)
    assert '<html lang="en">' in response.text
    assert page_config(response)["strings"] == catalogue("en")


async def test_sign_in_page_speaks_the_browser_language(api: Api) -> None:
    """The 401 sign-in page is in the browser's language too."""
    response = await api.client.get("/", headers={"Accept-Language": SPANISH})

    assert response.status_code == 401
    assert '<html lang="es">' in response.text
    assert page_config(response)["strings"] == catalogue("es")


@pytest.mark.parametrize(
    ("chosen", "accept", "expected"),
    [
        (None, None, "en"),
        (None, "", "en"),
        (None, SPANISH, "es"),
        (None, "es", "es"),
        (None, "ES-mx", "es"),
        (None, "en-US,es", "en"),
        (None, "es,en", "es"),
        (None, "en;q=0.5,es;q=0.9", "es"),
        (None, "es;q=0.8,en;q=0.8", "es"),
        (None, "en;q=0.8,es;q=0.8", "en"),
        (None, "fr,es;q=0.1", "es"),
        (None, "es;q=0,en;q=0.1", "en"),
        (None, "es;q=0", "en"),
        (None, "es;q=oops,en;q=0.1", "en"),
        (None, "*", "en"),
        (None, ";;,,=;q=,es-", "es"),
        (None, "\x00garbage\xff;;;", "en"),
        ("es", "en", "es"),
        ("en", SPANISH, "en"),
        ("fr", SPANISH, "es"),
        ("", SPANISH, "es"),
    ],
)
def test_negotiate_picks_language(
    chosen: str | None, accept: str | None, expected: str
) -> None:
    """A chosen language wins; else the highest q, then the earliest; else English."""
    assert negotiate(chosen, accept) == expected


# Catalogues


JS_KEY_CALL = re.compile(r"(?<![\w$])t\(")
LITERAL_KEY = re.compile(r'(?<![\w$])t\(\s*"([^"]+)"')
TERNARY_KEY = re.compile(r'(?<![\w$])t\(\s*[\w.]+\s*\?\s*"([^"]+)"\s*:\s*"([^"]+)"')
TEMPLATE_KEY = re.compile(r"(?<![\w$])t\(\s*`([a-z_]+)\.\$\{")
COUNT = re.compile(r"\bcount\b")
SECTION_KEY = re.compile(r'(?<![\w$])section\(\s*"([^"]+)"')
# Calls whose key comes from elsewhere: the wrapper `(key, vars) => i18n.t(key,
# vars)`, the method itself, and debug.js's section titles (SECTION_KEY).
INDIRECT_CALL = re.compile(r"(?<![\w$])t\((?:key, vars(?: = \{\})?|titleKey)\)")
# The templates the modules fill in, and every value they take.
TEMPLATE_VALUES = {
    "status": [status.value for status in Status],
    "role": [role.value for role in Role],
}


def js_sources() -> dict[str, str]:
    return {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(STATIC_DIR.glob("*.js"))
    }


def call_text(source: str, match: re.Match[str]) -> str:
    """A call's text up to its first closing parenthesis: its key and first vars."""
    return source[match.start() : source.find(")", match.end()) + 1]


def used_keys() -> dict[str, bool]:
    """Every key the modules ask for, and whether some call passes a `count`."""
    keys: dict[str, bool] = {}

    def use(key: str, call: str) -> None:
        keys[key] = keys.get(key, False) or COUNT.search(call) is not None

    for name, source in js_sources().items():
        readable = 0
        for match in LITERAL_KEY.finditer(source):
            use(match.group(1), call_text(source, match))
            readable += 1
        for match in TERNARY_KEY.finditer(source):
            for key in match.groups():
                use(key, call_text(source, match))
            readable += 1
        for match in TEMPLATE_KEY.finditer(source):
            prefix = match.group(1)
            assert prefix in TEMPLATE_VALUES, f"{name}: unknown key template {prefix}"
            for value in TEMPLATE_VALUES[prefix]:
                use(f"{prefix}.{value}", call_text(source, match))
            readable += 1
        readable += len(INDIRECT_CALL.findall(source))
        # A call whose key this test cannot read would go unchecked: refuse it.
        assert readable == len(JS_KEY_CALL.findall(source)), f"{name}: unread t()"
        for match in SECTION_KEY.finditer(source):
            use(match.group(1), "")
    return keys


def test_catalogues_have_same_keys() -> None:
    """Every language's catalogue has exactly the English keys."""
    english = set(catalogue("en"))
    for language in LANGUAGES:
        assert set(catalogue(language)) == english, language


def test_catalogues_have_no_empty_values() -> None:
    """No string in any catalogue is empty or only spaces."""
    for language in LANGUAGES:
        empty = [k for k, v in catalogue(language).items() if not v.strip()]
        assert empty == [], language


def test_catalogues_match_their_files() -> None:
    """The catalogue files are exactly the languages, each a flat map of strings."""
    assert sorted(path.stem for path in CATALOGUE_DIR.glob("*.json")) == sorted(
        LANGUAGES
    )
    for language in LANGUAGES:
        raw = json.loads((CATALOGUE_DIR / f"{language}.json").read_text("utf-8"))
        assert all(isinstance(value, str) for value in raw.values()), language


def test_catalogues_have_same_placeholders() -> None:
    """A string's `{name}` placeholders are the same in every language."""
    english = catalogue("en")
    for language in LANGUAGES:
        strings = catalogue(language)
        for key, text in english.items():
            expected = set(re.findall(r"\{(\w+)\}", text))
            assert set(re.findall(r"\{(\w+)\}", strings[key])) == expected, (
                language,
                key,
            )


def test_catalogues_plurals_are_complete() -> None:
    """Each plural key has its `.one` and `.other` forms, with a `{count}`."""
    for language in LANGUAGES:
        strings = catalogue(language)
        for key in strings:
            stem, _, form = key.rpartition(".")
            if form in {"one", "other"}:
                assert f"{stem}.one" in strings, (language, key)
                assert f"{stem}.other" in strings, (language, key)
                assert "{count}" in strings[f"{stem}.other"], (language, key)


def test_js_keys_exist_in_every_catalogue() -> None:
    """Every key the modules use is in both catalogues, plurals as one and other."""
    keys = used_keys()
    assert "lobby.title" in keys
    assert "status.cancelled" in keys
    assert "announce.left" in keys
    assert "debug.create" in keys
    for language in LANGUAGES:
        strings = catalogue(language)
        missing = []
        for key, counted in sorted(keys.items()):
            if key in strings:
                continue
            plural = f"{key}.one" in strings and f"{key}.other" in strings
            if not (counted and plural):
                missing.append(key)
        assert missing == [], language


def test_catalogue_refuses_unknown_language() -> None:
    """Asking for a catalogue that is not shipped is an error, not a silent default."""
    with pytest.raises(ValueError, match="fr"):
        catalogue("fr")
