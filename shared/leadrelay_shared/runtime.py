"""What one service process holds: its database engine, its Kafka producer, its background tasks.

Opened in the FastAPI ``lifespan`` and closed there; nothing is created at import time. The
producer starts in the background and keeps retrying, so a service comes up (and says it is not
ready) while Kafka is still starting or down.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Callable, Coroutine
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncEngine

from .kafka import broker_reachable, make_producer
from .logging import get_logger

log = get_logger(__name__)


class Runtime:
    def __init__(
        self,
        *,
        name: str,
        bootstrap: str | None,
        engine: AsyncEngine | None,
        send_timeout_s: float,
    ) -> None:
        """``bootstrap`` None: a service without Kafka (the console), ready on its database."""
        self.name = name
        self.engine = engine
        self._bootstrap = bootstrap
        self._send_timeout = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self.producer_ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def producer(self) -> AIOKafkaProducer:
        assert self._producer is not None, "Runtime.start() was not called"
        return self._producer

    async def start(self) -> None:
        """Create the producer (aiokafka needs a running loop) and connect it in the background."""
        if self._bootstrap is None:
            return
        self._producer = make_producer(
            self._bootstrap, client_id=self.name, send_timeout_s=self._send_timeout
        )
        self.spawn(self._start_producer(), "producer-start")

    async def _start_producer(self) -> None:
        delay = 0.25
        while True:
            try:
                await self.producer.start()
                self.producer_ready.set()
                return
            except KafkaError as exc:
                log.warning("producer_start_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self.name}:{name}")
        task.add_done_callback(self._on_done)
        self._tasks.append(task)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_died", task=task.get_name(), error=repr(task.exception()))

    async def after_producer(self, start: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``start()`` once the producer is up; a service stopped before that never makes
        what ``start`` would have made (a Kafka consumer, say), so nothing is left unclosed."""
        await self.producer_ready.wait()
        return await start()

    async def ready(self) -> dict[str, bool]:
        checks = {}
        if self._bootstrap is not None:
            checks["kafka"] = self.producer_ready.is_set() and await broker_reachable(self.producer)
        if self.engine is not None:
            checks["database"] = await db_reachable(self.engine)
        return checks

    async def close(self, grace_s: float = 5.0) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=grace_s)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), timeout=grace_s)
        if self.engine is not None:
            await self.engine.dispose()


YOUNG_GC_THRESHOLD = 100_000
"""Allocations between two young collections (CPython's default is 700): a batch of events
allocates tens of thousands of short-lived objects, and with this threshold most requests and
batches end before a young collection meets their objects and moves them on."""


def settle_heap() -> None:
    """Move everything alive now (imported modules, the app, a loaded routing or scoring
    configuration: hundreds of thousands of objects that live as long as the process) out of the
    cyclic garbage collector's sight, and collect young objects less often.

    Without it, every full collection walks the whole configuration again. Called once the service
    has started, and again after a configuration is reloaded: what was frozen is thawed and
    collected first, so a replaced configuration is freed and no garbage is frozen. In between,
    reference counting and the collector free new objects as usual; only cycles among frozen objects
    wait for the next settle."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, older, oldest)


async def db_reachable(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), timeout=timeout_s)
    except Exception:
        return False
    return True


# Longer than the idle timeouts of the load balancers and clients that reuse connections, so
# that they close an idle one first: a server that does races the next request sent on it.
KEEP_ALIVE_S = 75


def server_options(
    host: str, port: int, log_level: str, *, proxy_headers: bool = True
) -> dict[str, Any]:
    """uvicorn's settings for a service. With ``proxy_headers`` uvicorn takes the client's
    address and scheme from ``X-Forwarded-For`` / ``X-Forwarded-Proto`` when the connection
    comes from a trusted proxy (``FORWARDED_ALLOW_IPS``, this host by default); without, they
    are the connection's own."""
    return {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": proxy_headers,
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


def serve(app: Any, host: str, port: int, log_level: str, *, proxy_headers: bool = True) -> None:
    import uvicorn

    uvicorn.run(app, **server_options(host, port, log_level, proxy_headers=proxy_headers))


def lower_priority(nice: int) -> None:
    """Run this process at Unix priority ``nice``. Where Linux groups processes by session for
    scheduling (autogroup), a process's own nice value ranks it only among its session's, so a
    process that leads its own session (as the dev stack starts each service) lowers its
    session's too: otherwise it would still get as much of the cores as every other service."""
    os.nice(nice)
    if os.getsid(0) == os.getpid():
        with contextlib.suppress(OSError):  # a kernel without autogroup
            with open("/proc/self/autogroup", "w") as group:
                group.write(str(nice))


def main(
    *, package: str, schema: str | None, settings: Any, create_app: Any, proxy_headers: bool = True
) -> None:
    """A service process: migrate its schema (if it has one and is told to), then serve."""
    if settings.nice:
        lower_priority(settings.nice)
    if schema is not None and settings.migrate_on_start:
        from .migrate import upgrade

        upgrade(package, settings.database_url, schema)
    serve(
        create_app(settings),
        settings.host,
        settings.port,
        settings.log_level,
        proxy_headers=proxy_headers,
    )
