"""Who is calling: the platform's key, the cron token or a participant's token."""

from __future__ import annotations

import hmac
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import jwt

from sessionclock.constants import (
    TOKEN_ALGORITHM,
    TOKEN_AUDIENCE,
    TOKEN_ISSUER,
    VERIFIED_TOKENS,
)
from sessionclock.core.clock import Clock
from sessionclock.errors import EndpointDisabled, InvalidCredentials, MissingCredentials


class Kind(StrEnum):
    PLATFORM = "platform"
    PARTICIPANT = "participant"
    CRON = "cron"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    user_id: str | None = None

    @property
    def is_platform(self) -> bool:
        return self.kind is Kind.PLATFORM


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    user_id: str
    expires_at_ms: int


def same_secret(given: str, expected: str) -> bool:
    """Compare two secrets in time that does not depend on where they differ."""
    return hmac.compare_digest(given.encode(), expected.encode())


class TokenIssuer:
    """Signs and checks participant tokens: HS256 only, issuer, audience, expiry.

    A participant sends the same token with every request and every reconnect, and
    decoding it costs more than the rest of authenticating: the tokens whose
    signature and claims checked out are remembered (the most recent
    `VERIFIED_TOKENS`), and only their expiry is checked again, on every use.
    """

    def __init__(self, secret_key: str, clock: Clock) -> None:
        self._key = secret_key
        self._clock = clock
        self._verified: OrderedDict[str, VerifiedToken] = OrderedDict()

    def issue(self, user_id: str, ttl_s: int) -> IssuedToken:
        now_ms = self._clock.now_ms()
        expires_at_ms = now_ms + ttl_s * 1000
        claims = {
            "iss": TOKEN_ISSUER,
            "aud": TOKEN_AUDIENCE,
            "sub": user_id,
            "iat": now_ms // 1000,
            "exp": expires_at_ms // 1000,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm=TOKEN_ALGORITHM)
        return IssuedToken(token, (expires_at_ms // 1000) * 1000)

    def verify(self, token: str) -> str:
        """The user a token names; raises InvalidCredentials for anything else."""
        return self.check(token).user_id

    def claims_to_be_ours(self, token: str) -> bool:
        """Whether a token says this service issued it, signature aside."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return isinstance(claims, dict) and claims.get("iss") == TOKEN_ISSUER

    def check(self, token: str) -> VerifiedToken:
        """The user a token names and until when; raises InvalidCredentials."""
        verified = self._verified.get(token)
        if verified is None:
            verified = self._decode(token)
            self._verified[token] = verified
            if len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end(token)
        # Expiry is checked against the service's clock, which tests move.
        if verified.expires_at_ms <= self._clock.now_ms():
            raise InvalidCredentials(
                "the token has expired; ask the platform for a new one"
            )
        return verified

    def _decode(self, token: str) -> VerifiedToken:
        """Check a token's signature and claims, expiry aside."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[TOKEN_ALGORITHM],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={
                    "require": ["exp", "sub", "aud", "iss"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as error:
            raise InvalidCredentials(
                f"the token is not one this service signed ({error})"
            ) from None
        expires_at_s = claims["exp"]
        if not isinstance(expires_at_s, int):
            raise InvalidCredentials("the token's expiry is not a whole number")
        user_id = claims["sub"]
        if not isinstance(user_id, str) or not user_id:
            raise InvalidCredentials("the token names no user")
        return VerifiedToken(user_id, expires_at_s * 1000)


class Authenticator:
    """Turns a bearer credential into a principal."""

    def __init__(
        self,
        api_key: str,
        cron_token: str | None,
        issuer: TokenIssuer,
        source_participant: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._api_key = api_key
        self._cron_token = cron_token
        self._issuer = issuer
        # The booking source's own credentials (a Strapi JWT), tried after ours.
        self._source_participant = source_participant

    @property
    def cron_enabled(self) -> bool:
        return self._cron_token is not None

    def authenticate(self, bearer: str | None) -> Principal:
        """The platform (its key) or a participant (a token); raises AuthError."""
        if not bearer:
            raise MissingCredentials(
                "'Authorization: Bearer <token>' or ?access_token="
            )
        if same_secret(bearer, self._api_key):
            return Principal(Kind.PLATFORM)
        return Principal(Kind.PARTICIPANT, self._issuer.verify(bearer))

    def authenticate_participant(self, token: str | None) -> Principal:
        """A participant's token only; the platform key is refused here."""
        if not token:
            raise MissingCredentials(
                "'Authorization: Bearer <token>' or ?access_token="
            )
        if same_secret(token, self._api_key):
            raise InvalidCredentials(
                "the platform key goes in the Authorization header, never in an address"
            )
        return Principal(Kind.PARTICIPANT, self._issuer.verify(token))

    async def authenticate_any(self, bearer: str | None) -> Principal:
        """`authenticate`, and then the booking source's credentials."""
        try:
            return self.authenticate(bearer)
        except InvalidCredentials as error:
            return await self._from_source(bearer, error)

    async def authenticate_participant_any(self, token: str | None) -> Principal:
        """`authenticate_participant`, and then the booking source's credentials."""
        try:
            return self.authenticate_participant(token)
        except InvalidCredentials as error:
            if error.reason.startswith("the platform key"):
                raise
            return await self._from_source(token, error)

    async def _from_source(
        self, token: str | None, refusal: InvalidCredentials
    ) -> Principal:
        """The source's user for a token we did not sign; our refusal otherwise."""
        if self._source_participant is None or not token:
            raise refusal
        if self._issuer.claims_to_be_ours(token):
            # An expired or altered token of ours is never shown to the source.
            raise refusal
        user_id = await self._source_participant(token)
        if user_id is None:
            raise refusal
        return Principal(Kind.PARTICIPANT, user_id)

    def authenticate_cron(self, bearer: str | None) -> Principal:
        if self._cron_token is None:
            raise EndpointDisabled("the cron endpoint", "CRON_SECRET_TOKEN")
        if not bearer:
            raise MissingCredentials("'Authorization: Bearer <CRON_SECRET_TOKEN>'")
        if not same_secret(bearer, self._cron_token):
            raise InvalidCredentials("that is not the cron token")
        return Principal(Kind.CRON)
