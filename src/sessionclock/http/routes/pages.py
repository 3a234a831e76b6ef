"""The pages participants open: their sessions, one session, and debug controls.

A page is a small HTML shell: the strings of its language and what it is about go
in as JSON, and a plain ES module under `/static` draws the rest from the API.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from string import Template
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sessionclock.constants import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    PAGE_TOKEN_COOKIE,
    SESSION_ID_PATTERN,
)
from sessionclock.credentials import VerifiedToken
from sessionclock.errors import AuthError, SessionNotFound
from sessionclock.http.deps import RuntimeDep
from sessionclock.runtime import Runtime
from sessionclock.web.catalogue import catalogue, negotiate

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)

_TEMPLATE = Template(
    (Path(__file__).parents[2] / "web" / "templates" / "page.html").read_text(
        encoding="utf-8"
    )
)
_LANGUAGE_COOKIE_MAX_AGE_S = 365 * 86_400
# Pages change with every deploy and carry the user's state: never from a cache.
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
_SESSION_ID = re.compile(SESSION_ID_PATTERN)


@router.get("/", response_class=HTMLResponse)
async def home_page(request: Request, runtime: RuntimeDep) -> Response:
    """The signed-in participant's sessions; a near session's lobby opens itself."""
    if (redirect := _sign_in_or_switch(request, runtime)) is not None:
        return redirect
    language = _language(request)
    user = _signed_in(request, runtime)
    if user is None:
        return _sign_in_page(request, runtime, language)
    body = f'<div id="sessions"><p>{_text(language, "home.loading")}</p></div>'
    return _page(
        runtime,
        language,
        page="home",
        title_key="page.home",
        module="home.js",
        body=body,
        user_id=user.user_id,
    )


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
async def session_page(
    request: Request,
    runtime: RuntimeDep,
    session_id: Annotated[str, PathParam()],
) -> Response:
    """One session: its lobby, then the call, then how it ended."""
    if (redirect := _sign_in_or_switch(request, runtime)) is not None:
        return redirect
    language = _language(request)
    user = _signed_in(request, runtime)
    if user is None:
        return _sign_in_page(request, runtime, language)
    try:
        if not _SESSION_ID.match(session_id):
            raise SessionNotFound(session_id)
        await runtime.service.get_for(session_id, user.user_id)
    except SessionNotFound:
        # A stranger learns the same as for an unknown session: nothing.
        return _page(
            runtime,
            language,
            page="not_found",
            title_key="page.not_found",
            module="page.js",
            body=f"<p>{_text(language, 'not_found.body')}</p>"
            f'<p><a href="/">{_text(language, "nav.home")}</a></p>',
            status_code=404,
        )
    body = (
        f'<session-lobby mode="inline" session-id="{html.escape(session_id)}" '
        f'user-id="{html.escape(user.user_id)}" lang="{language}"></session-lobby>'
    )
    return _page(
        runtime,
        language,
        page="session",
        title_key="page.session",
        module="session-page.js",
        body=body,
        user_id=user.user_id,
        session_id=session_id,
    )


@router.get("/debug", response_class=HTMLResponse)
async def debug_page(request: Request, runtime: RuntimeDep) -> Response:
    """Development only: test sessions, a forced lobby, cleanup, the system's state."""
    if runtime.settings.env != "development":
        return Response(status_code=404)
    if (redirect := _sign_in_or_switch(request, runtime)) is not None:
        return redirect
    language = _language(request)
    return _page(
        runtime,
        language,
        page="debug",
        title_key="page.debug",
        module="debug.js",
        body=f'<p>{_text(language, "debug.production_note")}</p><div id="debug"></div>',
    )


def _sign_in_or_switch(request: Request, runtime: Runtime) -> Response | None:
    """Trade a link's token for a cookie, or keep a chosen language; then redirect.

    Either way the address loses the parameter: a token must not stay in the
    history or be copied along with the address.
    """
    token = request.query_params.get("access_token")
    chosen = request.query_params.get("lang")
    if token is None and chosen is None:
        return None
    kept = [
        (name, value)
        for name, value in request.query_params.multi_items()
        if name not in {"access_token", "lang"}
    ]
    target = request.url.path + (f"?{urlencode(kept)}" if kept else "")
    response = RedirectResponse(target, status_code=303, headers=_NO_STORE)
    secure = _secure(request, runtime)

    if chosen in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=_LANGUAGE_COOKIE_MAX_AGE_S,
            samesite="lax",
            secure=secure,
        )
    if token is not None:
        verified = _verify(runtime, token)
        if verified is None:
            # The page at the target says the link is no longer valid.
            response = RedirectResponse(
                target + ("&" if kept else "?") + "signin=expired",
                status_code=303,
                headers=_NO_STORE,
            )
            response.delete_cookie(PAGE_TOKEN_COOKIE)
            return response
        max_age_s = max(0, (verified.expires_at_ms - runtime.clock.now_ms()) // 1000)
        response.set_cookie(
            PAGE_TOKEN_COOKIE,
            token,
            max_age=max_age_s,
            httponly=True,
            # Lax: the link itself is a top-level navigation from mail or another
            # site; the cookie must not ride along with another site's requests.
            samesite="lax",
            secure=secure,
        )
        log.info("page.signed_in", user_id=verified.user_id, path=request.url.path)
    return response


def _verify(runtime: Runtime, token: str) -> VerifiedToken | None:
    try:
        runtime.authenticator.authenticate_participant(token)
        return runtime.issuer.check(token)
    except AuthError as error:
        log.warning("page.sign_in_refused", detail=error.detail)
        return None


def _signed_in(request: Request, runtime: Runtime) -> VerifiedToken | None:
    token = request.cookies.get(PAGE_TOKEN_COOKIE)
    return None if not token else _verify(runtime, token)


def _sign_in_page(request: Request, runtime: Runtime, language: str) -> Response:
    expired = (
        request.query_params.get("signin") == "expired"
        or PAGE_TOKEN_COOKIE in request.cookies
    )
    key = "signin.expired" if expired else "signin.body"
    response = _page(
        runtime,
        language,
        page="signin",
        title_key="page.signin",
        module="page.js",
        body=f"<p>{_text(language, key)}</p>",
        status_code=401,
    )
    if PAGE_TOKEN_COOKIE in request.cookies:
        response.delete_cookie(PAGE_TOKEN_COOKIE)
    return response


def _language(request: Request) -> str:
    return negotiate(
        request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )


def _secure(request: Request, runtime: Runtime) -> bool:
    public_url = runtime.settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https:")


def _text(language: str, key: str) -> str:
    return html.escape(catalogue(language)[key])


def _page(
    runtime: Runtime,
    language: str,
    *,
    page: str,
    title_key: str,
    module: str,
    body: str,
    user_id: str | None = None,
    session_id: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    settings = runtime.settings
    config: dict[str, Any] = {
        "page": page,
        "lang": language,
        "strings": catalogue(language),
        "user_id": user_id,
        "session_id": session_id,
        "sync_interval_s": settings.sync_interval_s,
        "development": settings.env == "development",
    }
    # Inside <script>, "</" would end the element early; JSON allows it escaped.
    config_json = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    links = " ".join(
        f'<a href="?lang={code}" hreflang="{code}" lang="{code}"'
        + (' aria-current="true"' if code == language else "")
        + f">{_text(code, f'lang.{code}')}</a>"
        for code in LANGUAGES
    )
    document = _TEMPLATE.substitute(
        lang=language,
        title=_text(language, title_key),
        config=config_json,
        module=module,
        language_label=_text(language, "lang.label"),
        language_links=links,
        body=body,
    )
    return HTMLResponse(document, status_code=status_code, headers=_NO_STORE)
