"""What sla-monitor runs: a clock at every handoff, due alerts fired, alert deliveries."""

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
from leadrelay_shared.service import Job, Service, Subscription, Webhooks, schedule
from leadrelay_shared.web import Admin

from . import api, handlers, views
from .adapters import orm
from .adapters.config_store import PolicyStore
from .adapters.repository import SlaUnitOfWork
from .metrics import BREACHED_OPEN, OPEN_CLOCKS
from .settings import SlaSettings


def create_app(settings: SlaSettings | None = None) -> FastAPI:
    settings = settings or SlaSettings()
    configure("sla-monitor", settings.log_level)
    engine = make_engine(settings.database_url, name="leadrelay-sla-monitor")
    policies = PolicyStore(settings.policies_path, Destinations.of(settings))

    def endpoints() -> dict[str, Endpoint]:
        return policies.current.endpoints()

    service = Service(
        "sla-monitor",
        settings,
        engine=engine,
        outbox=orm.outbox,
        retention=RetentionTables(orm.processed, orm.deliveries, orm.delivery_attempts),
        webhooks=Webhooks(
            orm.deliveries,
            orm.delivery_attempts,
            orm.endpoint_states,
            endpoints,
            schedule(settings.webhook_schedule_s),
            settings.webhook_timeout_s,
        ),
    )

    async def watch_handoffs(events: Sequence[Event]) -> bool:
        return await handlers.handle_batch(
            events, uow=SlaUnitOfWork(engine), config=lambda: policies.current, now=utcnow
        )

    async def fire_due() -> int:
        fired = await handlers.fire_due(
            uow=SlaUnitOfWork(engine),
            config=policies.current,
            now=utcnow(),
            limit=settings.scheduler_batch,
        )
        return len(fired)

    async def gauges() -> int:
        open_, overdue = await views.counts(engine, utcnow())
        OPEN_CLOCKS.set(open_)
        BREACHED_OPEN.set(overdue)
        return 0

    service.subscribe(
        Subscription(
            "consumer",
            [Topics.ROUTING, Topics.INTAKE, Topics.SCORING],
            settings.consumer_group,
            watch_handoffs,
            event_types=[t.event_type for t in handlers.HANDLED],
            fetch_wait_ms=settings.consumer_fetch_wait_ms or None,
            wakes_deliverer=True,
        )
    )
    # deadlines live in PostgreSQL; every tick claims what is due, a full batch runs again at once
    service.every(
        Job("scheduler", settings.scheduler_interval_s, fire_due, batch=settings.scheduler_batch)
    )
    service.every(Job("gauges", 5.0, gauges))
    service.watch(policies, settings.policies_reload_interval_s)
    queue = delivery_api.queue_router(
        delivery_api.QueueTables(orm.deliveries, orm.delivery_attempts, orm.endpoint_states),
        admin=Admin,
        endpoints_path="/channels",
        tags=["sla"],
        configured=lambda request: request.app.state.policies.current.endpoints(),
        prefix="/v1/sla",
    )
    return service.app(
        title="sla-monitor",
        routers=[api.router, queue],
        policies=policies,
        exception_handlers={delivery_api.DeliveryNotFound: delivery_api.on_delivery_not_found},
    )
