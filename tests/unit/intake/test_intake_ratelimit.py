"""The per-key limiter: counts on the service's event loop, never on threads of its own."""

from __future__ import annotations

import threading

import pytest

from intake.ratelimit import RateLimited, RateLimiter


async def test_limits_hold_and_say_when_to_retry() -> None:
    limiter = RateLimiter()
    for _ in range(3):
        await limiter.hit("key-a", "3/minute")
    with pytest.raises(RateLimited) as caught:
        await limiter.hit("key-a", "3/minute")
    assert 1 <= caught.value.retry_after_s <= 60
    await limiter.hit("key-b", "3/minute")  # another key has its own count


async def test_counting_starts_no_threads() -> None:
    """The thread-based storage of ``limits`` starts a ``threading.Timer`` on every hit that
    finds none running: about a hundred threads a second under load."""
    limiter = RateLimiter()
    before = {t.ident for t in threading.enumerate()}
    for i in range(50):
        await limiter.hit(f"key-{i % 5}", "1000/second")
    assert {t.ident for t in threading.enumerate()} <= before
