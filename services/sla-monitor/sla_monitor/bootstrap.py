"""Wiring of sla-monitor: policies, consumer, scheduler, outbox relay, alert deliverer, API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import Depends, FastAPI

from leadrelay_shared import delivery_api, retention
from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import DEFAULT_SCHEDULE_S, Deliverer, http_client
from leadrelay_shared.logging import configure
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import Runtime, settle_heap
from leadrelay_shared.web import install_problem_handlers, operator_api, ops_router, require_admin

from . import api, handlers, views
from .adapters import orm
from .adapters.policies import PolicyStore
from .adapters.repository import SlaUnitOfWork
from .metrics import BREACHED_OPEN, OPEN_CLOCKS
from .scheduler import Scheduler
from .settings import SlaSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    settings = settings or SlaSettings()
    configure("sla-monitor", settings.log_level)
    engine = make_engine(settings.database_url, name="leadrelay-sla-monitor")
    runtime = Runtime(name="sla-monitor", bootstrap=settings.kafka_bootstrap_servers,
                      engine=engine, send_timeout_s=settings.kafka_send_timeout_s)
    policies = PolicyStore(settings.policies_path)
    schedule = tuple(float(s) for s in settings.webhook_schedule_s.split(",") if s.strip())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await policies.activate(engine, utcnow())
        relay = OutboxRelay(engine, orm.outbox, runtime.producer,
                            poll_interval_s=settings.relay_poll_interval_s)
        client = http_client(settings.webhook_timeout_s)
        deliverer = Deliverer(engine, orm.deliveries, lambda: policies.current.endpoints(),
                              client, schedule=schedule or DEFAULT_SCHEDULE_S,
                              states=orm.endpoint_states, attempts=orm.delivery_attempts)

        def wake() -> None:
            relay.wake()
            deliverer.wake()

        async def handle(event: Event) -> None:
            await handle_batch([event])

        async def handle_batch(events: Sequence[Event]) -> None:
            if await handlers.handle_batch(events, uow=SlaUnitOfWork(engine),
                                           config=lambda: policies.current, now=utcnow):
                wake()

        async def tick() -> int:
            fired = await handlers.fire_due(uow=SlaUnitOfWork(engine), config=policies.current,
                                            now=utcnow(), limit=settings.scheduler_batch)
            return len(fired)

        async def gauges() -> None:
            open_, overdue = await views.counts(engine, utcnow())
            OPEN_CLOCKS.set(open_)
            BREACHED_OPEN.set(overdue)

        consumer = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=settings.consumer_group,
            topics=[Topics.ROUTING, Topics.INTAKE, Topics.SCORING], handler=handle,
            batch_handler=handle_batch,
            producer=runtime.producer, max_records=settings.consumer_max_records,
            offset_reset=settings.consumer_offset_reset,
            event_types=[t.event_type for t in handlers.HANDLED],
            fetch_wait_ms=settings.consumer_fetch_wait_ms or None)
        scheduler = Scheduler(tick, interval_s=settings.scheduler_interval_s,
                              batch=settings.scheduler_batch, on_fired=wake, gauges=gauges)
        runtime.spawn(runtime.after_producer(relay.run()), "outbox-relay")
        runtime.spawn(runtime.after_producer(consumer.run()), "consumer")
        runtime.spawn(scheduler.run(), "scheduler")
        runtime.spawn(deliverer.run(), "alerts")
        runtime.spawn(retention.for_service(engine, retention.RetentionTables(
            orm.processed, orm.deliveries, orm.delivery_attempts), settings, utcnow), "retention")
        runtime.spawn(policies.watch(engine, utcnow, settings.policies_reload_interval_s),
                      "policies")
        app.state.engine = engine
        app.state.wake = wake
        settle_heap()
        try:
            yield
        finally:
            consumer.stop()
            scheduler.stop()
            relay.stop()
            deliverer.stop()
            await runtime.close()
            await client.close()

    app = FastAPI(title="leadrelay sla-monitor", version="0.2.0", lifespan=lifespan)
    app.state.policies = policies
    install_problem_handlers(app)
    reader = operator_api(app, settings.admin_token, settings.read_token)
    app.include_router(api.router, dependencies=[reader])
    app.include_router(delivery_api.queue_router(
        delivery_api.QueueTables(orm.deliveries, orm.delivery_attempts, orm.endpoint_states),
        admin=Depends(require_admin), endpoints_path="/channels", tags=["sla"],
        configured=lambda request: request.app.state.policies.current.endpoints()),
        prefix="/v1/sla", dependencies=[reader])
    app.add_exception_handler(delivery_api.DeliveryNotFound, delivery_api.on_delivery_not_found)
    app.include_router(ops_router(runtime.ready))
    return app
