"""The one periodic loop every service's jobs run on (``clock.every``), and the clock."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from leadrelay_shared.clock import every, utcnow


def test_now_is_aware_and_in_utc() -> None:
    assert utcnow().tzinfo is UTC


async def _run(tick_results: list[int | Exception], *, batch: int | None) -> list[float]:
    """Runs ``every`` until the results are used up; the loop's instants of each tick."""
    loop = asyncio.get_running_loop()
    ticks: list[float] = []
    done = asyncio.Event()

    async def tick() -> int:
        ticks.append(loop.time())
        result = tick_results[len(ticks) - 1]
        if len(ticks) == len(tick_results):
            done.set()
        if isinstance(result, Exception):
            raise result
        return result

    task = asyncio.create_task(every(0.2, tick, name="test", batch=batch))
    try:
        await asyncio.wait_for(done.wait(), 5)
    finally:
        task.cancel()
    return ticks


async def test_a_full_batch_runs_again_at_once_a_partial_one_waits() -> None:
    ticks = await _run([10, 10, 3, 0], batch=10)
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert gaps[0] < 0.1 and gaps[1] < 0.1  # after full batches
    assert gaps[2] >= 0.19  # after a partial one


async def test_a_failed_tick_is_logged_and_the_next_one_still_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ticks = await _run([RuntimeError("database away"), 0], batch=None)
    assert len(ticks) == 2 and ticks[1] - ticks[0] >= 0.19
    assert "job_failed" in capsys.readouterr().out
