"""Per-key rate limits (the ``limits`` library, sliding-window counters in process memory).

The asyncio flavour of ``limits``: its thread-based memory storage expires counters with timer
threads that take the GIL from the event loop under load; the asyncio storage expires them in a
task on the service's own loop.

The limit holds per intake process: with N instances behind a load balancer a key gets up to N
times its limit. A shared store would fix that at the cost of a network call per request; see
docs/operations.md.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


class RateLimited(Exception):
    def __init__(self, limit: str, retry_after_s: int) -> None:
        super().__init__(f"rate limit {limit} exceeded")
        self.limit = limit
        self.retry_after_s = retry_after_s


@lru_cache(maxsize=256)
def _parse(notation: str) -> RateLimitItem:
    return parse(notation)


class RateLimiter:
    def __init__(self) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def hit(self, identity: str, notation: str, cost: int = 1) -> None:
        """Count ``cost`` requests for ``identity``; raise RateLimited with a Retry-After."""
        item = _parse(notation)
        if await self._limiter.hit(item, identity, cost=cost):
            return
        reset_at, _ = await self._limiter.get_window_stats(item, identity)
        raise RateLimited(str(item), max(1, math.ceil(reset_at - time.time())))
