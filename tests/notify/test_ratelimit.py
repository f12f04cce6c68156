import asyncio

from hypothesis import given
from hypothesis import strategies as st

from pbxgate.notify.ratelimit import AsyncLimiter, SendWindow, TokenBucket


def test_bucket_spaces_requests_evenly() -> None:
    b = TokenBucket(rate=20.0, now=0.0)
    waits = [b.reserve(0.0) for _ in range(5)]
    assert waits == [0.0, 0.05, 0.1, 0.15, 0.2]


def test_bucket_refills_with_time_up_to_capacity() -> None:
    b = TokenBucket(rate=3.0, capacity=2.0, now=0.0)
    assert b.reserve(0.0) == 0.0
    assert b.reserve(0.0) == 0.0
    assert abs(b.reserve(0.0) - 1 / 3) < 1e-9
    assert b.reserve(100.0) == 0.0  # long idle: full again, but not more than capacity
    assert b.reserve(100.0) == 0.0
    assert abs(b.reserve(100.0) - 1 / 3) < 1e-9


@given(
    st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=200),
    st.sampled_from([3.0, 20.0]),
)
def test_no_one_second_window_holds_more_than_rate(gaps: list[float], rate: float) -> None:
    b = TokenBucket(rate=rate, now=0.0)
    now, slots = 0.0, []
    for gap in gaps:
        now += gap
        slots.append(now + b.reserve(now))
    slots.sort()
    for i, start in enumerate(slots):
        in_window = [s for s in slots[i:] if s < start + 1.0 - 1e-9]
        assert len(in_window) <= rate


def test_async_limiter_sleeps_on_the_loop_clock() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    async def run() -> None:
        real_sleep = asyncio.sleep

        async def fake_sleep(d: float) -> None:
            sleeps.append(d)
            await real_sleep(0)

        limiter = AsyncLimiter(4.0, clock=lambda: clock[0])
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for _ in range(3):
                await limiter.acquire()
        finally:
            asyncio.sleep = real_sleep  # type: ignore[assignment]

    asyncio.run(run())
    assert sleeps == [0.25, 0.5]


def test_send_window_counts_real_send_times() -> None:
    w = SendWindow(limit=3, window=1.0)
    for t in (0.0, 0.1, 0.2):
        assert w.delay(t) == 0.0
        w.record(t)
    assert w.delay(0.5) == 0.5  # the 0.0 send leaves the window at 1.0
    assert w.delay(1.0) == 0.0
    w.record(1.0)
    assert abs(w.delay(1.0) - 0.1) < 1e-9


def test_async_limiter_window_holds_back_a_bunch_after_a_stall() -> None:
    clock = [0.0]
    sent: list[float] = []

    async def run() -> None:
        real_sleep = asyncio.sleep

        async def fake_sleep(d: float) -> None:
            clock[0] += d
            await real_sleep(0)

        limiter = AsyncLimiter(
            100.0, capacity=10.0, clock=lambda: clock[0], window=SendWindow(4, 1.0)
        )
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for _ in range(9):
                await limiter.acquire()
                sent.append(clock[0])
        finally:
            asyncio.sleep = real_sleep  # type: ignore[assignment]

    asyncio.run(run())
    # The bucket alone would let all 9 go at once; the window lets 4 per second.
    assert sent == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 2.0]
