"""What analytics runs: one consumer over every topic, keeping the funnel's read model."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.service import Service, Subscription

from . import api, handlers, views
from .adapters.repository import AnalyticsUnitOfWork
from .domain import PlanError
from .errors import on_plan_error
from .settings import AnalyticsSettings

TOPICS = (Topics.INTAKE, Topics.SCORING, Topics.ROUTING, Topics.SLA)


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    settings = settings or AnalyticsSettings()
    configure("analytics", settings.log_level)
    engine = make_engine(
        settings.database_url, name="leadrelay-analytics", server_settings=views.SERVER_SETTINGS
    )
    service = Service("analytics", settings, engine=engine)

    async def record(events: Sequence[Event]) -> bool:
        return await handlers.record(events, uow=AnalyticsUnitOfWork(engine))

    service.subscribe(
        Subscription(
            "consumer",
            TOPICS,
            settings.consumer_group,
            record,
            event_types=[t.event_type for t in handlers.HANDLED],
            poll_every_s=settings.consumer_poll_every_ms / 1000 or None,
        )
    )
    return service.app(
        title="analytics",
        routers=[api.router],
        description="The funnel's figures: waterfall, conversion, velocity and the planner.",
        exception_handlers={PlanError: on_plan_error},
        settings=settings,
    )
