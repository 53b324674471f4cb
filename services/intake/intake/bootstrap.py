"""What intake runs: the ingestion API in front of a Kafka producer, and its API keys."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.service import Service
from leadrelay_shared.web import BodyLimitMiddleware, install_request_tracking

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
    service = Service("intake", settings)
    if keys is None:  # the keys in PostgreSQL (tests give their own)
        engine = make_engine(settings.database_url, pool_size=2, name="leadrelay-intake")
        keys = stored = PgKeyStore(engine, ttl_s=settings.api_key_cache_ttl_s)
        service.run_in_background("api-keys-reload", stored.refresh)
        service.on_close(engine.dispose)
    publisher = KafkaPublisher(service.runtime, timeout_s=settings.kafka_send_timeout_s)
    gate = api.Gate(settings=settings, keys=keys, limiter=RateLimiter())
    app = service.app(
        title="intake",
        description=DESCRIPTION,
        routers=[api.router],
        exception_handlers=errors.EXCEPTION_HANDLERS,
        operator=False,
        publisher=publisher,
        gate=gate,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        overrides={"/v1/events:batch": settings.batch_max_body_bytes},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["POST", "OPTIONS"],
            max_age=600,
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
            ],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    install_request_tracking(app)
    return app
