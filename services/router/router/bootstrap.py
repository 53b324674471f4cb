"""Wiring of router: config, engine, producer, consumer, outbox relay, webhook deliverer, API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

import httpx
from fastapi import FastAPI

from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import DEFAULT_SCHEDULE_S, Deliverer
from leadrelay_shared.logging import configure
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import Runtime
from leadrelay_shared.web import install_problem_handlers, ops_router

from . import api, config, handlers
from .adapters import orm
from .adapters.repository import RouterUnitOfWork
from .errors import NotFound
from .settings import RouterSettings


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def schedule(raw: str) -> tuple[float, ...]:
    return tuple(float(s) for s in raw.split(",") if s.strip()) or DEFAULT_SCHEDULE_S


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()
    configure("router", settings.log_level)
    routing = config.load(settings.config_path)
    engine = make_engine(settings.database_url)
    runtime = Runtime(name="router", bootstrap=settings.kafka_bootstrap_servers, engine=engine,
                      send_timeout_s=settings.kafka_send_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        relay = OutboxRelay(engine, orm.outbox, runtime.producer,
                            poll_interval_s=settings.relay_poll_interval_s)
        client = httpx.AsyncClient(timeout=settings.webhook_timeout_s)
        deliverer = Deliverer(engine, orm.deliveries, routing.endpoints(), client,
                              schedule=schedule(settings.webhook_schedule_s))

        async def handle(event: Event) -> None:
            await handlers.handle(event, uow=RouterUnitOfWork(engine), config=routing, now=utcnow)
            relay.wake()
            deliverer.wake()

        consumer = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=settings.consumer_group,
            topics=[Topics.SCORING], handler=handle, producer=runtime.producer,
            max_records=settings.consumer_max_records)
        runtime.spawn(runtime.after_producer(relay.run()), "outbox-relay")
        runtime.spawn(runtime.after_producer(consumer.run()), "consumer")
        runtime.spawn(deliverer.run(), "webhooks")
        app.state.engine = engine
        app.state.deliverer = deliverer
        try:
            yield
        finally:
            consumer.stop()
            relay.stop()
            deliverer.stop()
            await runtime.close()
            await client.aclose()

    app = FastAPI(title="leadrelay router", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_exception_handler(NotFound, api.on_not_found)
    app.include_router(api.router)
    app.include_router(ops_router(runtime.ready))
    return app
