"""What scoring runs: intake's events through the model, handoffs onto timelines, timers."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.retention import RetentionTables
from leadrelay_shared.service import Job, Service, Subscription

from . import api, handlers
from .adapters import orm
from .adapters.config_store import ModelStore
from .adapters.repository import ScoringUnitOfWork
from .errors import LeadNotFound, ModelError
from .settings import ScoringSettings, timeline_group


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    settings = settings or ScoringSettings()
    configure("scoring", settings.log_level)
    engine = make_engine(settings.database_url, name="leadrelay-scoring")
    models = ModelStore(settings.model_path)
    service = Service(
        "scoring",
        settings,
        engine=engine,
        outbox=orm.outbox,
        retention=RetentionTables(orm.processed),
    )

    async def score(events: Sequence[Event]) -> None:
        await handlers.handle_batch(
            events, uow=ScoringUnitOfWork(engine), model=models.current, now=utcnow
        )

    async def record_handoffs(events: Sequence[Event]) -> bool:
        await handlers.record_handoffs(events, uow=ScoringUnitOfWork(engine))
        return False  # timeline entries only: nothing to send

    async def timers() -> int:
        return await handlers.run_timers(
            uow=ScoringUnitOfWork(engine),
            model=models.current,
            now=utcnow(),
            limit=settings.timer_batch,
        )

    service.subscribe(
        Subscription(
            "consumer",
            [Topics.INTAKE],
            settings.consumer_group,
            score,
            lanes=settings.consumer_lanes,
        )
    )
    # router's and sla-monitor's word on each lead, for its timeline: a group of its own, so the
    # intake events' lanes never wait for it, and a batch about once a second
    service.subscribe(
        Subscription(
            "handoff-consumer",
            [Topics.ROUTING, Topics.SLA],
            timeline_group(settings.consumer_group),
            record_handoffs,
            event_types=[t.event_type for t in handlers.HANDOFF_EVENTS],
            collect=False,
            fetch_wait_ms=1_000,
        )
    )
    service.every(
        Job("timers", settings.timer_interval_s, timers, first_delay_s=settings.timer_interval_s)
    )
    service.watch(models, settings.model_reload_interval_s)
    return service.app(
        title="scoring",
        routers=[api.router],
        exception_handlers={LeadNotFound: api.on_not_found, ModelError: api.on_model_error},
        models=models,
    )
