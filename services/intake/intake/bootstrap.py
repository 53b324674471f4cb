"""Wiring of intake in one place: settings in, a FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from leadrelay_shared.logging import configure
from leadrelay_shared.runtime import Runtime
from leadrelay_shared.web import BodyLimitMiddleware, install_problem_handlers, ops_router

from . import api
from .adapters.publisher import KafkaPublisher
from .errors import InvalidInput, NotAccepted
from .settings import IntakeSettings


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    configure("intake", settings.log_level)
    runtime = Runtime(name="intake", bootstrap=settings.kafka_bootstrap_servers, engine=None,
                      send_timeout_s=settings.kafka_send_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        app.state.publisher = KafkaPublisher(runtime.producer, ready=runtime.producer_ready,
                                             timeout_s=settings.kafka_send_timeout_s)
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(title="leadrelay intake", version="0.1.0", lifespan=lifespan,
                  description="Ingestion of form fills and sales activity. Every 202 means "
                              "Kafka acknowledged the event with acks=all.")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_problem_handlers(app)
    app.add_exception_handler(InvalidInput, api.on_invalid_input)
    app.add_exception_handler(NotAccepted, api.on_not_accepted)
    app.include_router(api.router)
    app.include_router(ops_router(runtime.ready))
    return app
