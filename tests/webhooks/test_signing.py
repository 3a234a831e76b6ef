"""Webhook signatures: what a receiver computes and checks."""

from __future__ import annotations

import hashlib
import hmac

from sessionclock.webhooks.signing import signature_header, verify

SECRET = "whsec-" + "w" * 32
BODY = b'{"id":"e-1","type":"ready"}'
NOW_S = 1_796_320_800


def test_signature_is_hmac_sha256_of_timestamp_and_body() -> None:
    """The header carries the timestamp and the HMAC of `<t>.<body>`."""
    expected = hmac.new(
        SECRET.encode(), f"{NOW_S}.".encode() + BODY, hashlib.sha256
    ).hexdigest()
    assert signature_header(SECRET, NOW_S, BODY) == f"t={NOW_S},v1={expected}"


def test_verify_accepts_a_fresh_signature() -> None:
    """A receiver accepts what was signed with its secret a moment ago."""
    header = signature_header(SECRET, NOW_S, BODY)
    assert verify(SECRET, header, BODY, NOW_S + 10, tolerance_s=300)


def test_verify_refuses_a_changed_body_or_another_secret() -> None:
    """A changed body, or a signature made with another secret, is refused."""
    header = signature_header(SECRET, NOW_S, BODY)
    assert not verify(SECRET, header, BODY + b" ", NOW_S, tolerance_s=300)
    assert not verify("other" + SECRET, header, BODY, NOW_S, tolerance_s=300)


def test_verify_refuses_an_old_delivery() -> None:
    """A delivery replayed after the tolerance is refused."""
    header = signature_header(SECRET, NOW_S, BODY)
    assert not verify(SECRET, header, BODY, NOW_S + 301, tolerance_s=300)


def test_verify_refuses_malformed_headers() -> None:
    """Headers without a timestamp or a signature are refused, never raise."""
    for header in ("", "t=abc,v1=00", f"t={NOW_S}", "v1=00", "garbage"):
        assert not verify(SECRET, header, BODY, NOW_S, tolerance_s=300)
