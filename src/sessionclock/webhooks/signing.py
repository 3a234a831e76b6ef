"""Webhook signatures: HMAC-SHA256 over a timestamp and the body (no framework)."""

from __future__ import annotations

import hashlib
import hmac

SCHEME = "v1"


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under the shared secret."""
    signed = str(timestamp_s).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp_s: int, body: bytes) -> str:
    """The value of the signature header: `t=<timestamp>,v1=<signature>`."""
    return f"t={timestamp_s},{SCHEME}={signature(secret, timestamp_s, body)}"


def verify(secret: str, header: str, body: bytes, now_s: int, tolerance_s: int) -> bool:
    """Whether a signature header is right for this body and recent enough.

    What a receiver runs: it rejects a body that was changed, a signature made
    with another secret, and a delivery replayed more than `tolerance_s` later.
    """
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    try:
        timestamp_s = int(parts.get("t", [""])[0])
    except ValueError:
        return False
    if abs(now_s - timestamp_s) > tolerance_s:
        return False
    expected = signature(secret, timestamp_s, body)
    return any(hmac.compare_digest(expected, given) for given in parts.get(SCHEME, []))
