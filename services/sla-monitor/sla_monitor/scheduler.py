"""The durable timer loop: deadlines live in PostgreSQL; every tick claims what is due.

A tick that fires a full batch runs again at once; otherwise the loop sleeps ``interval_s``
(0.1 s by default), so an alert is recorded well within a second of its instant. Gauges of
open and overdue clocks are refreshed every ``gauge_interval_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from leadrelay_shared.logging import get_logger

log = get_logger(__name__)


class Scheduler:
    def __init__(self, tick: Callable[[], Awaitable[int]], *, interval_s: float, batch: int,
                 on_fired: Callable[[], None],
                 gauges: Callable[[], Awaitable[None]] | None = None,
                 gauge_interval_s: float = 5.0) -> None:
        self._tick = tick
        self._interval = interval_s
        self._batch = batch
        self._on_fired = on_fired
        self._gauges = gauges
        self._gauge_interval = gauge_interval_s
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        next_gauges = 0.0
        while not self._stopping:
            try:
                fired = await self._tick()
                if self._gauges is not None and time.monotonic() >= next_gauges:
                    next_gauges = time.monotonic() + self._gauge_interval
                    await self._gauges()
            except Exception as exc:
                log.warning("scheduler_tick_failed", error=repr(exc))
                fired = 0
            if fired:
                log.debug("sla_alerts_fired", count=fired)
                self._on_fired()
            if fired < self._batch:
                await asyncio.sleep(self._interval)
