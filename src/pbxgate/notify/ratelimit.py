"""Client-side rate limit: a token bucket that does arithmetic on a passed clock.

VK allows 20 requests/s for a community token and 3/s for a user token (reference/vk.md §7);
going faster earns error 6. The bucket holds ``capacity`` tokens (1 by default: requests are
spaced evenly, so no one-second window ever holds more than ``rate`` of them) and refills at
``rate`` per second. ``reserve`` never refuses: it books the next free slot and returns how long
the caller must wait, so concurrent senders queue in order.

Spacing alone is not enough: when the event loop is held up (a disk flush, a busy CPU), several
senders whose slots have passed go out together. :class:`SendWindow` is the second guard,
checked right before each request: at most ``limit`` sends within any ``window`` seconds,
counted at the moment they really happen.
"""

from __future__ import annotations

import asyncio
from collections import deque
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


class SendWindow:
    """At most ``limit`` events in any ``window`` seconds, by the times they really happened."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def delay(self, now: float) -> float:
        """0 when one more event may happen at ``now``; else the seconds until one may."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window - now

    def record(self, now: float) -> None:
        self._times.append(now)


class AsyncLimiter:
    """The asyncio driver of a :class:`TokenBucket` (the loop's monotonic clock)."""

    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        clock: Callable[[], float] | None = None,
        window: SendWindow | None = None,
    ) -> None:
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._bucket: TokenBucket | None = None
        self._rate = rate
        self._capacity = capacity
        self.window = window

    async def acquire(self) -> None:
        now = self._clock()
        if self._bucket is None:
            self._bucket = TokenBucket(self._rate, self._capacity, now)
        wait = self._bucket.reserve(now)
        if wait > 0:
            await asyncio.sleep(wait)
        if self.window is None:
            return
        while (extra := self.window.delay(self._clock())) > 0:
            await asyncio.sleep(extra)
        self.window.record(self._clock())


__all__ = ["AsyncLimiter", "SendWindow", "TokenBucket"]
