"""Wiring of router: config store, engine, producer, consumer, outbox relay, deliverer, API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI

from leadrelay_shared import delivery_api, retention
from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import DEFAULT_SCHEDULE_S, Deliverer, http_client
from leadrelay_shared.logging import configure
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import Runtime, settle_heap
from leadrelay_shared.web import install_problem_handlers, operator_api, ops_router

from . import alerts, api, handlers
from .adapters import orm
from .adapters.configs import ConfigStore
from .adapters.repository import RouterUnitOfWork
from .errors import ConfigError, NotFound
from .settings import RouterSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


def schedule(raw: str) -> tuple[float, ...]:
    return tuple(float(s) for s in raw.split(",") if s.strip()) or DEFAULT_SCHEDULE_S


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()
    configure("router", settings.log_level)
    store = ConfigStore(settings.config_path)
    engine = make_engine(settings.database_url, name="leadrelay-router")
    runtime = Runtime(name="router", bootstrap=settings.kafka_bootstrap_servers, engine=engine,
                      send_timeout_s=settings.kafka_send_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await store.start(engine, utcnow())
        relay = OutboxRelay(engine, orm.outbox, runtime.producer,
                            poll_interval_s=settings.relay_poll_interval_s)
        client = http_client(settings.webhook_timeout_s)
        deliverer = Deliverer(
            engine, orm.deliveries, lambda: store.current.endpoints(), client,
            schedule=schedule(settings.webhook_schedule_s), states=orm.endpoint_states,
            attempts=orm.attempts,
            on_dead=alerts.dead_letter_alert(lambda: store.current.endpoints()))

        def wake() -> None:
            relay.wake()
            deliverer.wake()

        async def handle(event: Event) -> None:
            await handle_batch([event])

        async def handle_batch(events: Sequence[Event]) -> None:
            # the webhooks are queued leased to this deliverer, which sends them once the batch
            # has committed, without a claim (a woken deliverer would find nothing due)
            uow = RouterUnitOfWork(engine, lease_webhooks_s=deliverer.lease_s)
            await handlers.handle_batch(events, uow=uow, config=store.current, now=utcnow)
            deliverer.take(uow.leased_webhooks)
            relay.wake()

        consumer = EventConsumer(
            bootstrap=settings.kafka_bootstrap_servers, group_id=settings.consumer_group,
            topics=[Topics.SCORING, Topics.SLA], handler=handle, batch_handler=handle_batch,
            producer=runtime.producer, max_records=settings.consumer_max_records,
            offset_reset=settings.consumer_offset_reset,
            event_types=[t.event_type for t in handlers.HANDLED])
        runtime.spawn(runtime.after_producer(relay.run()), "outbox-relay")
        runtime.spawn(runtime.after_producer(consumer.run()), "consumer")
        runtime.spawn(deliverer.run(), "webhooks")
        runtime.spawn(retention.for_service(engine, retention.RetentionTables(
            orm.processed, orm.deliveries, orm.attempts), settings, utcnow), "retention")
        runtime.spawn(store.watch(engine, utcnow, settings.config_reload_interval_s),
                      "config-watch")
        app.state.engine = engine
        app.state.configs = store
        app.state.wake = wake
        settle_heap()
        try:
            yield
        finally:
            consumer.stop()
            relay.stop()
            deliverer.stop()
            await runtime.close()
            await client.close()

    app = FastAPI(title="leadrelay router", version="0.2.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.add_exception_handler(NotFound, api.on_not_found)
    app.add_exception_handler(ConfigError, api.on_config_error)
    reader = operator_api(app, settings.admin_token, settings.read_token)
    app.include_router(api.router, dependencies=[reader])
    app.include_router(delivery_api.queue_router(
        delivery_api.QueueTables(orm.deliveries, orm.attempts, orm.endpoint_states),
        admin=api.Admin, configured=lambda request: request.app.state.configs.current.endpoints()),
        prefix="/v1", dependencies=[reader])
    app.add_exception_handler(delivery_api.DeliveryNotFound, delivery_api.on_delivery_not_found)
    app.include_router(ops_router(runtime.ready))
    return app
