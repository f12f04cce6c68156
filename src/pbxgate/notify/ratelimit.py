"""Client-side rate limit: a token bucket that does arithmetic on a passed clock.

VK allows 20 requests/s for a community token and 3/s for a user token (reference/vk.md §7);
going faster earns error 6. The bucket holds ``capacity`` tokens (1 by default: requests are
spaced evenly, so no one-second window ever holds more than ``rate`` of them) and refills at
``rate`` per second. ``reserve`` never refuses: it books the next free slot and returns how long
the caller must wait, so concurrent senders queue in order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, capacity: float = 1.0, now: float = 0.0) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._last = now

    def reserve(self, now: float) -> float:
        """Take one token; return the seconds to wait before using it (0 when available now)."""
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate


class AsyncLimiter:
    """The asyncio driver of a :class:`TokenBucket` (the loop's monotonic clock)."""

    def __init__(
        self, rate: float, capacity: float = 1.0, clock: Callable[[], float] | None = None
    ) -> None:
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._bucket: TokenBucket | None = None
        self._rate = rate
        self._capacity = capacity

    async def acquire(self) -> None:
        now = self._clock()
        if self._bucket is None:
            self._bucket = TokenBucket(self._rate, self._capacity, now)
        wait = self._bucket.reserve(now)
        if wait > 0:
            await asyncio.sleep(wait)


__all__ = ["AsyncLimiter", "TokenBucket"]
