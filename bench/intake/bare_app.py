"""The framework's ceiling: a FastAPI endpoint on the same path that does no work at all, served
by the same uvicorn (uvloop, httptools, one worker, no access log) as intake.

Given a Kafka bootstrap (``python -m bench.intake.bare_app PORT BOOTSTRAP``) it also serves the
durable floor, ``POST /v1/events/durable``: the least an endpoint answering "202 means durable"
can do. It reads the body and sends it as one record with intake's producer settings (acks=all,
idempotence, the same partitioner), waits for the acknowledgement as intake waits for a single
event's (``send_record``), and answers. No authentication, validation or event is made.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request

from leadrelay_shared.codec import KafkaRecord
from leadrelay_shared.kafka import ensure_topics, make_producer, send_record

FLOOR_TOPIC = "leadrelay.bench-floor.v1"
FLOOR_PARTITIONS = 6  # as many as intake's topic
SEND_TIMEOUT_S = 2.0  # intake's default (INTAKE_KAFKA_SEND_TIMEOUT_S)


def create(bootstrap: str | None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if bootstrap is None:
            yield
            return
        await ensure_topics(bootstrap, {FLOOR_TOPIC: FLOOR_PARTITIONS})
        producer = make_producer(
            bootstrap, client_id="bench-durable-floor", send_timeout_s=SEND_TIMEOUT_S
        )
        await producer.start()
        app.state.producer = producer
        try:
            yield
        finally:
            await producer.stop()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/events", status_code=202)
    async def accept() -> dict[str, str]:
        return {"status": "accepted"}

    @app.post("/v1/events:batch")
    async def accept_batch() -> dict[str, str]:
        return {"status": "accepted"}

    @app.post("/v1/events/durable", status_code=202)
    async def accept_durably(request: Request) -> dict[str, str]:
        record = KafkaRecord(
            topic=FLOOR_TOPIC, key=uuid.uuid4().bytes, value=await request.body(), headers=[]
        )
        await send_record(request.app.state.producer, record, SEND_TIMEOUT_S)
        return {"status": "accepted"}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


if __name__ == "__main__":
    uvicorn.run(
        create(sys.argv[2] if len(sys.argv) > 2 else None),
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
    )
