"""What router runs: scored and re-route events through the routing config, signed webhooks."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from leadrelay_shared import delivery_api
from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import Endpoint
from leadrelay_shared.destinations import Destinations
from leadrelay_shared.logging import configure
from leadrelay_shared.retention import RetentionTables
from leadrelay_shared.service import Service, Subscription, Webhooks, schedule
from leadrelay_shared.web import Admin

from . import api, handlers, metrics
from .adapters import alerts, orm
from .adapters.config_store import ConfigStore
from .adapters.repository import RouterUnitOfWork
from .errors import ConfigError, NotFound
from .settings import RouterSettings


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or RouterSettings()
    configure("router", settings.log_level)
    destinations = Destinations.of(settings)
    store = ConfigStore(settings.config_path, destinations)
    engine = make_engine(settings.database_url, name="leadrelay-router")

    def endpoints() -> dict[str, Endpoint]:
        return store.current.endpoints()

    service = Service(
        "router",
        settings,
        engine=engine,
        outbox=orm.outbox,
        retention=RetentionTables(orm.processed, orm.deliveries, orm.attempts),
        webhooks=Webhooks(
            orm.deliveries,
            orm.attempts,
            orm.endpoint_states,
            endpoints,
            schedule(settings.webhook_schedule_s),
            settings.webhook_timeout_s,
            on_dead=alerts.dead_letter_alert(endpoints),
        ),
    )

    async def route(events: Sequence[Event]) -> None:
        # the webhooks are queued leased to this deliverer, which sends them once the batch has
        # committed, without a claim (a woken deliverer would find nothing due)
        uow = RouterUnitOfWork(engine, lease_webhooks_s=service.deliverer.lease_s)
        outcomes = await handlers.handle_batch(events, uow=uow, config=store.current, now=utcnow)
        service.deliverer.take(uow.leased_webhooks)
        metrics.count(outcomes)

    service.subscribe(
        Subscription(
            "consumer",
            [Topics.SCORING, Topics.SLA],
            settings.consumer_group,
            route,
            event_types=[t.event_type for t in handlers.HANDLED],
        )
    )
    service.watch(store, settings.config_reload_interval_s)
    queue = delivery_api.queue_router(
        delivery_api.QueueTables(orm.deliveries, orm.attempts, orm.endpoint_states),
        admin=Admin,
        configured=lambda request: request.app.state.configs.current.endpoints(),
        prefix="/v1",
    )
    return service.app(
        title="router",
        routers=[api.router, queue],
        configs=store,
        destinations=destinations,
        exception_handlers={
            NotFound: api.on_not_found,
            ConfigError: api.on_config_error,
            delivery_api.DeliveryNotFound: delivery_api.on_delivery_not_found,
        },
    )
