"""The services' one clock, and the one loop that runs work every few seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from .logging import get_logger

log = get_logger(__name__)


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: what every service passes to its pure decisions."""
    return datetime.now(UTC)


async def every(
    interval_s: float,
    tick: Callable[[], Awaitable[int | None]],
    *,
    name: str,
    batch: int | None = None,
    first_delay_s: float = 0.0,
) -> None:
    """Run ``tick`` now and then every ``interval_s`` until cancelled. A tick that did a full
    ``batch`` of work runs again at once; a failed tick is logged and tried at the next one
    (nothing it did was committed)."""
    await asyncio.sleep(first_delay_s)
    while True:
        try:
            done = await tick()
        except Exception as exc:
            log.warning("job_failed", job=name, error=repr(exc)[:500])
            done = 0
        if batch is None or (done or 0) < batch:
            await asyncio.sleep(interval_s)
