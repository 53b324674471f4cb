"""The consumer loop on real Kafka and PostgreSQL: redelivery is harmless, poison is dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from leadrelay_shared.codec import encode
from leadrelay_shared.consumer import EventConsumer
from leadrelay_shared.contracts import Event, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import make_producer, send_record
from leadrelay_shared.migrate import upgrade
from scoring import handlers
from scoring.adapters import orm
from scoring.adapters.repository import ScoringUnitOfWork
from scoring.model import default_model
from tests.factories import form
from tests.integration.kafka_helpers import read_to_end

pytestmark = pytest.mark.integration


async def run_until(consumer: EventConsumer, done, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(consumer.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await done():
            assert not task.done(), task.exception()
            assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.1)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 15)


async def test_redelivered_event_changes_nothing_and_poison_goes_to_dead_letter(infra, database_url) -> None:  # type: ignore[no-untyped-def]
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    producer = make_producer(infra.bootstrap, client_id="test")
    await producer.start()
    event = form()
    record = encode(event)
    poison_key = f"poison-{uuid.uuid4()}".encode()
    # The same event twice (a producer retry or a replay), then garbage, then a valid event.
    await send_record(producer, record, 5)
    await send_record(producer, record, 5)
    await producer.send_and_wait(Topics.INTAKE, b"\x00not-an-event", key=poison_key)
    last = form()
    await send_record(producer, encode(last), 5)

    async def handle(e: Event) -> None:
        await handlers.handle(e, uow=ScoringUnitOfWork(engine), model=default_model(),
                              now=lambda: datetime.now(timezone.utc))

    consumer = EventConsumer(bootstrap=infra.bootstrap, group_id=f"t-{uuid.uuid4()}",
                             topics=[Topics.INTAKE], handler=handle, producer=producer)

    async def last_seen() -> bool:
        async with engine.connect() as conn:
            return bool(await conn.scalar(sa.select(sa.func.count()).where(
                orm.leads.c.lead_id == last.lead_id)))

    await run_until(consumer, last_seen)
    async with engine.connect() as conn:
        fills = await conn.scalar(sa.select(orm.leads.c.form_fills)
                                  .where(orm.leads.c.lead_id == event.lead_id))
        outbox = await conn.scalar(sa.select(sa.func.count()).where(
            orm.outbox.c.lead_id == event.lead_id))
    assert fills == 1
    assert outbox == 3  # one LeadScored, two StageChanged: not doubled

    dead = await read_to_end(infra.bootstrap, Topics.DEAD_LETTER, keep=lambda r: r.key == poison_key)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert b"missing ce_type" in headers["dlq_reason"]
    assert headers["dlq_original_topic"] == Topics.INTAKE.encode()
    assert dead[0].value == b"\x00not-an-event"
    await producer.stop()
    await engine.dispose()
