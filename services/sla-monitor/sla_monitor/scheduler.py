"""The durable timer loop: deadlines live in PostgreSQL; every tick claims what is due."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from leadrelay_shared.logging import get_logger

log = get_logger(__name__)


class Scheduler:
    def __init__(self, tick: Callable[[], Awaitable[int]], *, interval_s: float,
                 on_fired: Callable[[], None]) -> None:
        self._tick = tick
        self._interval = interval_s
        self._on_fired = on_fired
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            try:
                fired = await self._tick()
            except Exception as exc:
                log.warning("scheduler_tick_failed", error=repr(exc))
                fired = 0
            if fired:
                log.info("sla_breaches_fired", count=fired)
                self._on_fired()
                continue
            await asyncio.sleep(self._interval)
