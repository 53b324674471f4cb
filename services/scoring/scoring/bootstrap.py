"""Wiring of scoring: engine, producer, model store, consumer, timers, outbox relay, API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from leadrelay_shared import retention
from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure, get_logger
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import Runtime, settle_heap
from leadrelay_shared.web import install_problem_handlers, operator_api, ops_router

from . import api, handlers
from .adapters import orm
from .adapters.models import ModelStore
from .adapters.repository import ScoringUnitOfWork
from .errors import LeadNotFound
from .settings import ScoringSettings, timeline_group

log = get_logger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    configure("scoring", settings.log_level)
    engine = make_engine(settings.database_url, name="leadrelay-scoring")
    runtime = Runtime(name="scoring", bootstrap=settings.kafka_bootstrap_servers, engine=engine,
                      send_timeout_s=settings.kafka_send_timeout_s)
    models = ModelStore(settings.model_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await models.activate(engine, utcnow())
        relay = OutboxRelay(engine, orm.outbox, runtime.producer,
                            poll_interval_s=settings.relay_poll_interval_s)

        async def handle(event: Event) -> None:
            await handle_batch([event])

        async def handle_batch(events: Sequence[Event]) -> None:
            await handlers.handle_batch(events, uow=ScoringUnitOfWork(engine),
                                        model=models.current, now=utcnow)
            relay.wake()

        async def timers() -> None:
            while True:
                await asyncio.sleep(settings.timer_interval_s)
                try:
                    moved = await handlers.run_timers(
                        uow=ScoringUnitOfWork(engine), model=models.current, now=utcnow(),
                        limit=settings.timer_batch)
                except Exception as exc:  # the next tick tries again; nothing was committed
                    log.warning("timers_failed", error=repr(exc)[:500])
                    continue
                if moved:
                    relay.wake()

        consumer = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=settings.consumer_group,
            topics=[Topics.INTAKE], handler=handle, batch_handler=handle_batch,
            producer=runtime.producer, max_records=settings.consumer_max_records,
            lanes=settings.consumer_lanes, offset_reset=settings.consumer_offset_reset)

        async def record_handoffs(events: Sequence[Event]) -> None:
            await handlers.record_handoffs(events, uow=ScoringUnitOfWork(engine))

        async def record_handoff(event: Event) -> None:
            await record_handoffs([event])

        # router's and sla-monitor's word on each lead, for its timeline: a group of its own, so
        # the intake events' lanes never wait for it, and a batch about once a second
        handoffs = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers,
            group_id=timeline_group(settings.consumer_group), topics=[Topics.ROUTING, Topics.SLA],
            handler=record_handoff, batch_handler=record_handoffs, producer=runtime.producer,
            max_records=settings.consumer_max_records, offset_reset=settings.consumer_offset_reset,
            event_types=[t.event_type for t in handlers.HANDOFF_EVENTS], collect=False,
            fetch_wait_ms=1_000)
        runtime.spawn(runtime.after_producer(relay.run()), "outbox-relay")
        runtime.spawn(runtime.after_producer(consumer.run()), "consumer")
        runtime.spawn(runtime.after_producer(handoffs.run()), "handoff-consumer")
        runtime.spawn(timers(), "timers")
        runtime.spawn(retention.for_service(
            engine, retention.RetentionTables(orm.processed), settings, utcnow), "retention")
        runtime.spawn(models.watch(engine, utcnow, settings.model_reload_interval_s),
                      "model-watch")
        app.state.engine = engine
        app.state.models = models
        app.state.relay = relay
        settle_heap()
        try:
            yield
        finally:
            consumer.stop()
            handoffs.stop()
            relay.stop()
            await runtime.close()

    app = FastAPI(title="leadrelay scoring", version="0.2.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_exception_handler(LeadNotFound, api.on_not_found)
    reader = operator_api(app, settings.admin_token, settings.read_token)
    app.include_router(api.router, dependencies=[reader])
    app.include_router(ops_router(runtime.ready))
    return app
