"""The skeleton every service runs on. A service declares what it is (its subscriptions, its
periodic jobs, the config files it watches, whether it relays an outbox and delivers webhooks,
its API routers); ``Service.app`` builds the rest: the lifespan that starts and stops it all,
health and readiness, metrics, retention, problem documents and operator tokens.

Declared handlers run only once the lifespan has started, so they may use ``deliverer``. After
a batch the service wakes the outbox relay (and, for a subscription that says so, the
deliverer) unless the handler answered ``False``, nothing to send; after a job tick that did
work it wakes both. What a transaction queued then goes out without waiting for a poll.
"""

from __future__ import annotations

from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from . import backlog, retention, tracing
from .clock import every, utcnow
from .consumer import BatchHandler, EventConsumer
from .contracts import Event
from .delivery import DEFAULT_SCHEDULE_S, DeadHook, Deliverer, Endpoint, http_client
from .destinations import Destinations
from .outbox import OutboxRelay
from .runtime import Runtime, settle_heap
from .settings import BackendSettings, ServiceSettings
from .web import install_problem_handlers, operator_api, ops_router

ExceptionHandler = Callable[[Any, Exception], Awaitable[Any]]


class Watched(Protocol):
    """A config file the service reloads when it changes (``configfile.WatchedFile``)."""

    async def activate(self, engine: AsyncEngine, now: datetime) -> None: ...
    async def reload(self, engine: AsyncEngine, now: datetime) -> bool: ...


@dataclass(frozen=True)
class Subscription:
    """Topics a consumer group reads, and the batch handler that takes their events."""

    name: str
    topics: Sequence[str]
    group_id: str
    handle: Callable[[Sequence[Event]], Awaitable[bool | None]]
    event_types: Collection[str] | None = None
    wakes_deliverer: bool = False
    lanes: int = 1
    collect: bool = True
    fetch_wait_ms: int | None = None
    poll_every_s: float | None = None


@dataclass(frozen=True)
class Job:
    """Work done every ``interval_s``: ``tick`` says how much it did (a full ``batch`` runs
    again at once)."""

    name: str
    interval_s: float
    tick: Callable[[], Awaitable[int | None]]
    batch: int | None = None
    first_delay_s: float = 0.0


@dataclass(frozen=True)
class Webhooks:
    """The signed deliveries a service sends from its queue table."""

    table: sa.Table
    attempts: sa.Table
    states: sa.Table
    endpoints: Callable[[], Mapping[str, Endpoint]]
    schedule_s: Sequence[float] = DEFAULT_SCHEDULE_S
    timeout_s: float = 10.0
    on_dead: DeadHook | None = None


def schedule(raw: str) -> tuple[float, ...]:
    """A retry schedule from settings (``"1,5,30"``); empty means the default."""
    return tuple(float(s) for s in raw.split(",") if s.strip()) or DEFAULT_SCHEDULE_S


@dataclass
class Service:
    """What one service is; ``app`` turns it into a FastAPI app."""

    name: str
    settings: ServiceSettings
    engine: AsyncEngine | None = None
    kafka: bool = True
    outbox: sa.Table | None = None
    webhooks: Webhooks | None = None
    retention: retention.RetentionTables | None = None
    subscriptions: list[Subscription] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    watched: list[tuple[Watched, float]] = field(default_factory=list)
    background: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = field(
        default_factory=list
    )
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    runtime: Runtime = field(init=False)
    _relay: OutboxRelay | None = field(default=None, init=False)
    _deliverer: Deliverer | None = field(default=None, init=False)
    _consumers: list[EventConsumer] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        tracing.configure(self.name)
        self.runtime = Runtime(
            name=self.name,
            bootstrap=self.settings.kafka_bootstrap_servers if self.kafka else None,
            engine=self.engine,
            send_timeout_s=self.settings.kafka_send_timeout_s,
        )

    def subscribe(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)

    def every(self, job: Job) -> None:
        self.jobs.append(job)

    def watch(self, config: Watched, interval_s: float) -> None:
        self.watched.append((config, interval_s))

    def run_in_background(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self.background.append((name, work))

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        self.closers.append(close)

    @property
    def destinations(self) -> Destinations:
        """Where this service's webhooks may go, by its settings."""
        return Destinations.of(self.settings)

    @property
    def deliverer(self) -> Deliverer:
        assert self._deliverer is not None, "the service has no webhooks, or has not started"
        return self._deliverer

    def wake(self, *, deliverer: bool = True) -> None:
        """Send what a commit queued now, not at the next poll."""
        if self._relay is not None:
            self._relay.wake()
        if deliverer and self._deliverer is not None:
            self._deliverer.wake()

    def app(
        self,
        *,
        title: str,
        routers: Sequence[APIRouter] = (),
        description: str = "",
        exception_handlers: Mapping[type[Exception], ExceptionHandler] | None = None,
        operator: bool = True,
        **state: Any,
    ) -> FastAPI:
        """The service's app: its routers under the operator tokens (``operator``), the
        operations routes, its exception handlers and ``state`` on ``app.state``."""
        app = FastAPI(
            title=f"leadrelay {title}",
            version="0.2.0",
            description=description,
            lifespan=self._lifespan,
        )
        install_problem_handlers(app)
        for exc_type, handler in (exception_handlers or {}).items():
            app.add_exception_handler(exc_type, handler)
        dependencies = []
        if operator:
            assert isinstance(self.settings, BackendSettings)
            dependencies.append(
                operator_api(app, self.settings.admin_token, self.settings.read_token)
            )
        for router in routers:
            app.include_router(router, dependencies=dependencies)
        app.include_router(ops_router(self.runtime.ready))
        if tracing.enabled():
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            FastAPIInstrumentor.instrument_app(
                app,
                tracer_provider=tracing.provider(),
                excluded_urls="healthz,readyz,metrics",
                exclude_spans=["receive", "send"],
            )
        app.state.engine = self.engine
        app.state.wake = self.wake
        for key, value in state.items():
            setattr(app.state, key, value)
        return app

    @asynccontextmanager
    async def _lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        runtime = self.runtime
        await runtime.start()
        client: aiohttp.ClientSession | None = None
        try:
            if self.engine is not None:
                for config, _interval in self.watched:
                    await config.activate(self.engine, utcnow())
            if self.outbox is not None:
                assert self.engine is not None
                self._relay = OutboxRelay(
                    self.engine,
                    self.outbox,
                    runtime.producer,
                    poll_interval_s=self.settings.relay_poll_interval_s,
                )
                runtime.spawn(runtime.after_producer(self._relay.run), "outbox-relay")
            if self.webhooks is not None:
                client = http_client(self.webhooks.timeout_s, destinations=self.destinations)
                self._deliverer = self._make_deliverer(client)
                runtime.spawn(self._deliverer.run(), "webhooks")
            for sub in self.subscriptions:
                runtime.spawn(runtime.after_producer(self._consume(sub)), sub.name)
            for job in self._all_jobs():
                runtime.spawn(
                    every(
                        job.interval_s,
                        self._waking(job.tick),
                        name=job.name,
                        batch=job.batch,
                        first_delay_s=job.first_delay_s,
                    ),
                    job.name,
                )
            for name, work in self.background:
                runtime.spawn(work(), name)
            settle_heap()
            yield
        finally:
            for consumer in self._consumers:
                consumer.stop()
            for stoppable in (self._relay, self._deliverer):
                if stoppable is not None:
                    stoppable.stop()
            await runtime.close()
            if client is not None:
                await client.close()
            for close in self.closers:
                await close()
            tracing.shutdown()

    def _make_deliverer(self, client: aiohttp.ClientSession) -> Deliverer:
        hooks = self.webhooks
        assert hooks is not None and self.engine is not None
        return Deliverer(
            self.engine,
            hooks.table,
            hooks.endpoints,
            client,
            schedule=hooks.schedule_s,
            states=hooks.states,
            attempts=hooks.attempts,
            on_dead=hooks.on_dead,
            destinations=self.destinations,
        )

    def batch_handler(self, sub: Subscription) -> BatchHandler:
        """The subscription's handler, waking what it gave work to once it has committed."""

        async def handle(events: Sequence[Event]) -> None:
            if await sub.handle(events) is not False:
                self.wake(deliverer=sub.wakes_deliverer)

        return handle

    def _consume(self, sub: Subscription) -> Callable[[], Coroutine[Any, Any, None]]:
        def start() -> Coroutine[Any, Any, None]:
            consumer = self._make_consumer(sub)
            self._consumers.append(consumer)
            return consumer.run()

        return start

    def _make_consumer(self, sub: Subscription) -> EventConsumer:
        s = self.settings
        return EventConsumer(
            bootstrap=s.kafka_bootstrap_servers,
            group_id=sub.group_id,
            topics=sub.topics,
            batch_handler=self.batch_handler(sub),
            producer=self.runtime.producer,
            max_records=s.consumer_max_records,
            offset_reset=s.consumer_offset_reset,
            event_types=sub.event_types,
            lanes=sub.lanes,
            collect=sub.collect,
            fetch_wait_ms=sub.fetch_wait_ms,
            poll_every_s=sub.poll_every_s,
        )

    def _all_jobs(self) -> list[Job]:
        jobs = list(self.jobs)
        engine = self.engine
        if engine is not None:
            for config, interval_s in self.watched:
                jobs.append(
                    Job(
                        f"reload-{type(config).__name__}",
                        interval_s,
                        _reloader(config, engine),
                        first_delay_s=interval_s,
                    )
                )
        if engine is not None and self.retention is not None:
            assert isinstance(self.settings, BackendSettings)
            policy = retention.RetentionPolicy.from_days(
                self.settings.retention_processed_events_days,
                self.settings.retention_delivered_webhooks_days,
            )
            tables = self.retention

            async def sweep() -> int:
                return await retention.sweep_and_log(engine, tables, policy, utcnow())

            interval = self.settings.retention_interval_s
            jobs.append(Job("retention", interval, sweep, first_delay_s=min(60.0, interval)))
        if engine is not None and (self.outbox is not None or self.webhooks is not None):
            queued = self.webhooks.table if self.webhooks is not None else None
            outbox = self.outbox

            async def measure() -> None:
                await backlog.measure(engine, outbox, queued, utcnow())

            jobs.append(Job("backlog", backlog.BACKLOG_INTERVAL_S, measure))
        return jobs

    def _waking(
        self, tick: Callable[[], Awaitable[int | None]]
    ) -> Callable[[], Awaitable[int | None]]:
        async def run() -> int | None:
            with tracing.scope():
                done = await tick()
            if done:
                self.wake()
            return done

        return run


def _reloader(config: Watched, engine: AsyncEngine) -> Callable[[], Awaitable[int]]:
    async def reload() -> int:
        changed = await config.reload(engine, utcnow())
        if changed:
            settle_heap()
        return 0

    return reload
