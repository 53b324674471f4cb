"""A what-if at a time per instance: another asked meanwhile is refused, not queued."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from leadrelay_shared.web import PROBLEM, ReplaySlot, install_problem_handlers


async def test_a_second_what_if_meanwhile_is_refused_with_retry_after() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    started, release = asyncio.Event(), asyncio.Event()

    @app.post("/simulate", dependencies=[ReplaySlot])
    async def simulate() -> dict[str, bool]:
        started.set()
        await release.wait()
        return {"done": True}

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://svc"
    ) as client:
        first = asyncio.create_task(client.post("/simulate"))
        await started.wait()
        refused = await client.post("/simulate")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
        assert refused.headers["content-type"] == PROBLEM
        assert "already running" in refused.json()["detail"]
        release.set()
        assert (await first).json() == {"done": True}
        assert (await client.post("/simulate")).status_code == 200  # the slot is free again
