"""Wiring of sla-monitor: consumer, scheduler, outbox relay, alert deliverer, API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import httpx
from fastapi import FastAPI

from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import DEFAULT_SCHEDULE_S, Deliverer, Endpoint
from leadrelay_shared.logging import configure
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import Runtime
from leadrelay_shared.web import install_problem_handlers, ops_router

from . import api, handlers
from .adapters import orm
from .adapters.repository import SlaUnitOfWork
from .domain import Policy
from .scheduler import Scheduler
from .settings import SlaSettings


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    settings = settings or SlaSettings()
    configure("sla-monitor", settings.log_level)
    engine = make_engine(settings.database_url)
    runtime = Runtime(name="sla-monitor", bootstrap=settings.kafka_bootstrap_servers,
                      engine=engine, send_timeout_s=settings.kafka_send_timeout_s)
    policy = Policy(id=settings.policy_id, first_touch=timedelta(seconds=settings.first_touch_seconds))
    ops = Endpoint(id="ops", url=settings.ops_webhook_url, secret=settings.ops_webhook_secret)
    schedule = tuple(float(s) for s in settings.webhook_schedule_s.split(",") if s.strip())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        relay = OutboxRelay(engine, orm.outbox, runtime.producer,
                            poll_interval_s=settings.relay_poll_interval_s)
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        deliverer = Deliverer(engine, orm.deliveries, {ops.id: ops}, client,
                              schedule=schedule or DEFAULT_SCHEDULE_S)

        def fired() -> None:
            relay.wake()
            deliverer.wake()

        async def handle(event: Event) -> None:
            await handlers.handle(event, uow=SlaUnitOfWork(engine), policy=policy, now=utcnow)

        async def tick() -> int:
            return await handlers.fire_due(uow=SlaUnitOfWork(engine), now=utcnow(), ops=ops)

        consumer = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=settings.consumer_group,
            topics=[Topics.ROUTING, Topics.INTAKE], handler=handle, producer=runtime.producer,
            max_records=settings.consumer_max_records)
        scheduler = Scheduler(tick, interval_s=settings.scheduler_interval_s, on_fired=fired)
        runtime.spawn(runtime.after_producer(relay.run()), "outbox-relay")
        runtime.spawn(runtime.after_producer(consumer.run()), "consumer")
        runtime.spawn(scheduler.run(), "scheduler")
        runtime.spawn(deliverer.run(), "alerts")
        app.state.engine = engine
        try:
            yield
        finally:
            consumer.stop()
            scheduler.stop()
            relay.stop()
            deliverer.stop()
            await runtime.close()
            await client.aclose()

    app = FastAPI(title="leadrelay sla-monitor", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(api.router)
    app.include_router(ops_router(runtime.ready))
    return app
