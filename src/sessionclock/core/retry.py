"""When to try a failed delivery again: exponential backoff with a cap and jitter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The retry schedule of outbox deliveries."""

    base_s: float = 1.0
    cap_s: float = 600.0
    max_attempts: int = 20

    def delay_ms(self, attempts: int, jitter: float) -> int:
        """How long to wait after `attempts` failed tries; `jitter` is in [0, 1).

        The delay doubles with each failure up to the cap, and jitter spreads it
        over its upper half, so that many deliveries that failed together (a
        receiver that was down) do not all come back in the same second.
        """
        if attempts < 1:
            raise ValueError(f"expected at least one failed attempt, got {attempts}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"expected jitter in [0, 1), got {jitter}")
        ceiling_s = min(self.cap_s, self.base_s * 2 ** min(attempts - 1, 62))
        return int(ceiling_s * (0.5 + jitter / 2) * 1000)

    def gives_up_after(self, attempts: int) -> bool:
        """Whether a delivery that failed `attempts` times is failed for good."""
        return attempts >= self.max_attempts
