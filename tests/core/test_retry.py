"""The outbox's retry schedule: doubling, capped, spread by jitter."""

from __future__ import annotations

import pytest

from sessionclock.core.retry import Backoff


def test_delay_doubles_until_the_cap() -> None:
    """Each failure doubles the ceiling of the delay until it reaches the cap."""
    backoff = Backoff(base_s=1, cap_s=10, max_attempts=20)
    ceilings = [backoff.delay_ms(attempts, 0.999_999) for attempts in range(1, 7)]
    assert ceilings == [999, 1999, 3999, 7999, 9999, 9999]


def test_delay_with_jitter_stays_in_the_upper_half() -> None:
    """Jitter spreads a delay over the upper half of its ceiling, never below."""
    backoff = Backoff(base_s=2, cap_s=600)
    assert backoff.delay_ms(3, 0.0) == 4000
    assert 4000 <= backoff.delay_ms(3, 0.5) < 8000


def test_delay_of_many_failures_does_not_overflow() -> None:
    """A delivery that failed a thousand times waits the cap, not forever."""
    assert Backoff(base_s=1, cap_s=600).delay_ms(1000, 0.0) == 300_000


def test_gives_up_after_the_last_attempt() -> None:
    """A delivery is failed for good once it used every attempt."""
    backoff = Backoff(max_attempts=3)
    assert not backoff.gives_up_after(2)
    assert backoff.gives_up_after(3)


@pytest.mark.parametrize(("attempts", "jitter"), [(0, 0.0), (1, 1.0), (1, -0.1)])
def test_delay_refuses_impossible_inputs(attempts: int, jitter: float) -> None:
    """No failed attempt yet, or jitter outside [0, 1), is a caller's mistake."""
    with pytest.raises(ValueError, match="expected"):
        Backoff().delay_ms(attempts, jitter)
