"""Retry policy: exponential backoff with jitter, computed from a passed ``now`` and ``rng``.

The delay before attempt ``n + 1`` is ``min(maximum, initial * 2**(n - 1))`` scaled by a factor
drawn from [0.5, 1.0) ("equal jitter", AWS Architecture Blog, "Exponential Backoff And Jitter",
2015): retries after a VK outage spread out instead of arriving together, yet never wait less
than half the nominal delay. A channel may ask for a longer wait (Telegram's ``retry_after``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    initial: float = 5.0
    maximum: float = 900.0
    max_attempts: int = 10

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (``attempts`` >= 1)."""
        # the exponent capped: 2.0 ** 1024 overflows (max_attempts may be set very high)
        nominal = min(self.maximum, self.initial * 2.0 ** min(max(0, attempts - 1), 64))
        return nominal * (0.5 + rng.random() / 2)

    def next_attempt_at(
        self, attempts: int, now: float, rng: random.Random, at_least: float = 0.0
    ) -> float | None:
        """When to try again, or None when ``attempts`` used up the budget (a dead letter)."""
        if attempts >= self.max_attempts:
            return None
        return now + max(self.delay(attempts, rng), at_least)


__all__ = ["RetryPolicy"]
