"""The process-level tuning every service applies once started."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from devstack.ports import free_port
from leadrelay_shared.runtime import YOUNG_GC_THRESHOLD, server_options, settle_heap

AUTOGROUP = Path("/proc/self/autogroup")
_LOWER = (
    "import os, pathlib; from leadrelay_shared.runtime import lower_priority; lower_priority(10); "
    "g = pathlib.Path('/proc/self/autogroup'); "
    "print(os.getpriority(0, 0)); print(g.read_text() if g.exists() else '', end='')"
)


def _session_nice(autogroup: str) -> str | None:
    """The nice value in an autogroup line; None where the file is missing (a kernel without
    autogroup) or empty (a process in the default group, one that never started a session)."""
    words = autogroup.split()
    return words[-1] if words else None


@pytest.mark.parametrize("own_session", [True, False])
def test_a_lowered_service_that_leads_its_session_lowers_the_session_too(
    own_session: bool,
) -> None:
    # Linux schedules sessions against each other first: a service started in a session of its
    # own (as the dev stack starts them) and niced alone would take as much as any other
    nice, _, autogroup = subprocess.run(
        [sys.executable, "-c", _LOWER],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=own_session,
    ).stdout.partition("\n")
    assert nice == "10"
    # a process in its caller's session leaves the session (this test's) as it was
    if own_session and AUTOGROUP.exists():
        assert _session_nice(autogroup) == "10"
    else:
        assert _session_nice(autogroup) == _session_nice(
            AUTOGROUP.read_text() if AUTOGROUP.exists() else ""
        )


def test_settle_heap_freezes_what_lives_and_thaws_it_again_on_the_next_settle() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the cyclic collector can free it

    settle_heap()
    assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == YOUNG_GC_THRESHOLD
    node = Node()
    alive = weakref.ref(node)
    settle_heap()
    # frozen: still tracked, but in no generation the collector walks
    assert gc.is_tracked(node) and not any(o is node for o in gc.get_objects())
    del node
    settle_heap()  # thawed, collected, frozen again: the cycle is gone
    assert alive() is None


async def test_an_idle_connection_stays_open_past_a_clients_keep_alive() -> None:
    """Served as every service is served: a connection idle for longer than httpx keeps one
    (5 s) is still open, so a client or load balancer that reuses it is not reset."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", **server_options("127.0.0.1", free_port(), "warning"))
    )
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.config.port)
    try:
        request = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
        writer.write(request)
        assert b"200 OK" in await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(11)  # {"ok":true}
        await asyncio.sleep(6)
        writer.write(request)
        assert b"200 OK" in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
        server.should_exit = True
        await serving
