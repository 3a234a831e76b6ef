"""FastAPI dependencies: the node's runtime and the caller's credentials.

All are `async def`: FastAPI runs plain functions in a thread pool, a hop per
dependency per request that cost more than the work itself.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import (
    APIKeyCookie,
    APIKeyQuery,
    HTTPAuthorizationCredentials,
    HTTPBearer,
)

from sessionclock.constants import PAGE_TOKEN_COOKIE
from sessionclock.credentials import Kind, Principal
from sessionclock.errors import Forbidden
from sessionclock.runtime import Runtime

log = structlog.get_logger(__name__)

_bearer = HTTPBearer(
    auto_error=False, description="the platform key or a participant token"
)
_query = APIKeyQuery(
    name="access_token",
    auto_error=False,
    description="a participant token, where a browser cannot set headers",
)
_cookie = APIKeyCookie(
    name=PAGE_TOKEN_COOKIE,
    auto_error=False,
    description="the participant token a sign-in link left in the browser",
)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def header_bearer(
    header: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return None if header is None else header.credentials


HeaderBearerDep = Annotated[str | None, Depends(header_bearer)]


async def get_principal(
    request: Request,
    header: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    query: Annotated[str | None, Depends(_query)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal:
    # Every authenticated request solves this: the runtime is read here rather
    # than through `RuntimeDep`, a dependency less to solve per request.
    runtime: Runtime = request.app.state.runtime
    if header is not None:
        principal = await runtime.authenticator.authenticate_any(header.credentials)
    else:
        # Addresses end up in proxy logs and browser history, cookies come from a
        # sign-in link: only a participant's own token may travel there, never the
        # platform key.
        principal = await runtime.authenticator.authenticate_participant_any(
            query or cookie
        )
    log.debug(
        "credentials.accepted", kind=principal.kind.value, user_id=principal.user_id
    )
    return principal


async def get_platform(
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    if principal.kind is not Kind.PLATFORM:
        raise Forbidden("this endpoint", "the platform key (SESSIONCLOCK_API_KEY)")
    return principal


async def get_participant(
    principal: Annotated[Principal, Depends(get_principal)],
) -> Principal:
    if principal.kind is not Kind.PARTICIPANT:
        raise Forbidden("this endpoint", "a participant token naming the caller")
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]
PlatformDep = Annotated[Principal, Depends(get_platform)]
ParticipantDep = Annotated[Principal, Depends(get_participant)]
