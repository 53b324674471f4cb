"""Wiring of scoring: engine, producer, consumer, outbox relay, API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI

from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import Runtime
from leadrelay_shared.web import install_problem_handlers, ops_router

from . import api, handlers
from .adapters import orm
from .adapters.repository import ScoringUnitOfWork
from .domain import ScoringModel
from .errors import LeadNotFound
from .settings import ScoringSettings


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    configure("scoring", settings.log_level)
    engine = make_engine(settings.database_url)
    runtime = Runtime(name="scoring", bootstrap=settings.kafka_bootstrap_servers, engine=engine,
                      send_timeout_s=settings.kafka_send_timeout_s)
    model = ScoringModel()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        relay = OutboxRelay(engine, orm.outbox, runtime.producer,
                            poll_interval_s=settings.relay_poll_interval_s)

        async def handle(event: Event) -> None:
            await handlers.handle(event, uow=ScoringUnitOfWork(engine), model=model, now=utcnow)
            relay.wake()

        consumer = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=settings.consumer_group,
            topics=[Topics.INTAKE], handler=handle, producer=runtime.producer,
            max_records=settings.consumer_max_records)
        runtime.spawn(runtime.after_producer(relay.run()), "outbox-relay")
        runtime.spawn(runtime.after_producer(consumer.run()), "consumer")
        app.state.engine = engine
        try:
            yield
        finally:
            consumer.stop()
            relay.stop()
            await runtime.close()

    app = FastAPI(title="leadrelay scoring", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_exception_handler(LeadNotFound, api.on_not_found)
    app.include_router(api.router)
    app.include_router(ops_router(runtime.ready))
    return app
