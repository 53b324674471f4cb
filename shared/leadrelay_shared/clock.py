"""The services' one clock, the one loop that runs work every few seconds, and the span of
history a what-if replays."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from .logging import get_logger

log = get_logger(__name__)


def utcnow() -> datetime:
    """Now, timezone-aware in UTC: what every service passes to its pure decisions."""
    return datetime.now(UTC)


class WindowError(ValueError):
    """A window that is not one; ``field`` names the option at fault (``days`` or ``from``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def window(
    days: int | None, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    """``days`` back from ``until`` (now by default; 30 days by default), or ``since`` to
    ``until``: what the what-if APIs and command lines take."""
    if days is not None and since is not None:
        raise WindowError("days", "give days or from, not both")
    if days is not None and days < 1:
        raise WindowError("days", "must be at least 1")
    end = until or utcnow()
    start = since or end - timedelta(days=days or 30)
    if start >= end:
        raise WindowError("from", "the window's start must come before its end")
    return start, end


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
