"""Wiring of intake in one place: settings in, a FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.runtime import Runtime, settle_heap
from leadrelay_shared.web import (
    BodyLimitMiddleware,
    install_problem_handlers,
    install_request_tracking,
    ops_router,
)

from . import api, errors
from .adapters.keystore import PgKeyStore
from .adapters.publisher import KafkaPublisher
from .auth import KeyStore
from .ratelimit import RateLimiter
from .settings import IntakeSettings

DESCRIPTION = """\
The one door into leadrelay: form fills, marketing events, sales activity and feedback, and
webhooks from HubSpot and Mautic.

* **202 means durable**: every accepted event was acknowledged by Kafka with `acks=all`. When
  Kafka does not answer in time the answer is **503** with `Retry-After`; retry with the same
  `Idempotency-Key` and the event keeps its id, so it is counted once.
* **Keys**: send `Authorization: Bearer lr_sk_...` or `X-API-Key`. Keys are scoped
  (`forms:write`, `events:write`, `activities:write`, `feedback:write`, `adapters:write`) and
  rate limited; browsers use a publishable `lr_pk_...` key in `?key=` for form posts only.
* **Errors** are RFC 9457 problem documents naming the field and the rule.
"""


def create_app(settings: IntakeSettings | None = None, *, keys: KeyStore | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    configure("intake", settings.log_level)
    engine, stored = None, None
    if keys is None:  # the keys in PostgreSQL (tests give their own)
        engine = make_engine(settings.database_url, pool_size=2, name="leadrelay-intake")
        keys = stored = PgKeyStore(engine, ttl_s=settings.api_key_cache_ttl_s)
    runtime = Runtime(name="intake", bootstrap=settings.kafka_bootstrap_servers, engine=None,
                      send_timeout_s=settings.kafka_send_timeout_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        if stored is not None:
            runtime.spawn(stored.refresh(), "api-keys-reload")
        app.state.publisher = KafkaPublisher(runtime.producer, ready=runtime.producer_ready,
                                             timeout_s=settings.kafka_send_timeout_s)
        settle_heap()
        try:
            yield
        finally:
            await runtime.close()
            if engine is not None:
                await engine.dispose()

    # A JSON body may come without a Content-Type, as web forms' scripts often send it.
    app = FastAPI(title="leadrelay intake", version="0.2.0", lifespan=lifespan,
                  description=DESCRIPTION, strict_content_type=False)
    app.state.gate = api.Gate(settings=settings, keys=keys, limiter=RateLimiter())
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       overrides={"/v1/events:batch": settings.batch_max_body_bytes})
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins,
                           allow_methods=["POST", "OPTIONS"], max_age=600,
                           allow_headers=["Authorization", "X-API-Key", "Content-Type",
                                          "Idempotency-Key", "X-Request-ID"],
                           expose_headers=["X-Request-ID", "Retry-After"])
    install_request_tracking(app)
    install_problem_handlers(app)
    for exc_type, handler in errors.EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
    app.include_router(api.router)
    app.include_router(ops_router(runtime.ready))
    return app
