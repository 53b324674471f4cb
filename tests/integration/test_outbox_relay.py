"""The outbox relay publishes every committed row exactly once, across a relay restart."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.codec import decode, encode
from leadrelay_shared.contracts import LeadScored, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import make_producer
from leadrelay_shared.migrate import upgrade
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.privacy import ERASED
from scoring import domain
from scoring.adapters import orm
from scoring.adapters.repository import ScoringUnitOfWork
from scoring.config import default_model
from tests.factories import T0, form
from tests.infra import Infra
from tests.integration.helpers import read_to_end

pytestmark = pytest.mark.integration


async def write_outbox(engine: AsyncEngine, lead_ids: list[str], per_lead: int) -> list[LeadScored]:
    events = []
    for i in range(per_lead):
        for lead_id in lead_ids:
            events.append(
                LeadScored(
                    lead_id=lead_id,
                    occurred_at=T0,
                    fit_score=i,
                    engagement_score=0,
                    contributions=(),
                    model_version="m",
                    cause_event_id=form().event_id,
                )
            )
    async with ScoringUnitOfWork(engine) as uow:
        for event in events:
            await uow.emit([event])
        await uow.commit()
    return events


async def test_relay_publishes_exactly_once_across_restart(infra: Infra, database_url: str) -> None:
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    lead_ids = [form().lead_id for _ in range(5)]
    events = await write_outbox(engine, lead_ids, per_lead=40)

    producer = make_producer(infra.bootstrap, client_id="relay-1")
    await producer.start()
    first = OutboxRelay(engine, orm.outbox, producer, batch_size=30)
    waits = REGISTRY.get_sample_value("leadrelay_outbox_wait_seconds_count", {"schema": "scoring"})
    assert await first.relay_once() == 30
    assert (
        REGISTRY.get_sample_value(  # one observation per batch: how long its oldest row waited
            "leadrelay_outbox_wait_seconds_count", {"schema": "scoring"}
        )
        == (waits or 0) + 1
    )
    assert await first.relay_once() == 30
    await producer.stop()  # the relay process goes away mid-outbox

    producer = make_producer(infra.bootstrap, client_id="relay-2")
    await producer.start()
    second = OutboxRelay(engine, orm.outbox, producer, batch_size=30)
    published = 60
    while (batch := await second.relay_once()) > 0:
        published += batch
    assert published == len(events)
    await producer.stop()
    async with engine.connect() as conn:  # a published row leaves the outbox
        assert (
            await conn.scalar(sa.select(sa.func.count()).where(orm.outbox.c.lead_id.in_(lead_ids)))
            == 0
        )

    ours = set(lead_ids)
    records = await read_to_end(
        infra.bootstrap, Topics.SCORING, keep=lambda r: r.key.decode() in ours
    )
    decoded = [decode(list(r.headers), r.value, r.key) for r in records]
    sent = {e.event_id: e for e in events}
    for record, event in zip(records, decoded, strict=True):  # as if encoded from the event
        reference = encode(sent[event.event_id])
        assert list(record.headers) == reference.headers and record.key == reference.key
        assert json.loads(record.value) == json.loads(reference.value)
    counts = Counter(e.event_id for e in decoded)
    assert set(counts) == {e.event_id for e in events}
    assert max(counts.values()) == 1
    for lead_id in lead_ids:  # per-lead order kept
        scores = [
            e.fit_score for e in decoded if e.lead_id == lead_id and isinstance(e, LeadScored)
        ]
        assert scores == sorted(scores)
    await engine.dispose()


async def three_rows_waiting(
    infra: Infra, database_url: str, client_id: str
) -> tuple[AsyncEngine, str, AIOKafkaProducer]:
    """A migrated scoring schema with three outbox rows of a new lead; the engine, the lead's
    id and a started producer."""
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    lead_id = form().lead_id
    await write_outbox(engine, [lead_id], per_lead=3)
    producer = make_producer(infra.bootstrap, client_id=client_id)
    await producer.start()
    return engine, lead_id, producer


async def waiting(engine: AsyncEngine, lead_id: str) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(sa.select(sa.func.count()).where(orm.outbox.c.lead_id == lead_id))
            or 0
        )


async def test_rows_stay_unpublished_when_kafka_is_down(infra: Infra, database_url: str) -> None:
    engine, lead_id, producer = await three_rows_waiting(infra, database_url, "relay-down")
    await producer.stop()  # a stopped producer cannot send: the batch fails
    relay = OutboxRelay(engine, orm.outbox, producer, send_timeout_s=1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the send raises, the rows stay
        await relay.relay_once()
    assert await waiting(engine, lead_id) == 3
    await engine.dispose()


async def test_claim_many_claims_each_event_once_within_a_batch_and_across_batches(
    infra: Infra, database_url: str
) -> None:
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    try:
        a, b, c = form(), form(), form()
        async with ScoringUnitOfWork(engine) as uow:
            assert await uow.claim([a, b, a]) == [a, b]  # a redelivered inside the batch
            await uow.commit()
        async with ScoringUnitOfWork(engine) as uow:
            assert await uow.claim([b, c, a]) == [c]
            await uow.commit()
        async with ScoringUnitOfWork(engine) as uow:  # rolled back: nothing claimed
            assert await uow.claim([form()]) != []
        async with engine.connect() as conn:
            count = await conn.scalar(sa.text("SELECT count(*) FROM scoring.processed_events"))
        assert count == 3
    finally:
        await engine.dispose()


async def test_statements_sent_to_asyncpg_directly_belong_to_the_unit_of_work(
    infra: Infra, database_url: str
) -> None:
    """Claims, profile loads and upserts go to asyncpg, not through SQLAlchemy, which opens the
    database transaction only at its own first statement: as a unit of work's first statements
    they must still be inside its transaction, gone when it rolls back, kept when it commits."""
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    event = form()
    profile = domain.apply(None, event, default_model(), T0).profile
    assert profile is not None

    async def stored() -> tuple[int, int]:
        async with engine.connect() as conn:
            leads = await conn.scalar(sa.text("SELECT count(*) FROM scoring.leads"))
            claims = await conn.scalar(sa.text("SELECT count(*) FROM scoring.processed_events"))
        return leads, claims

    try:
        for commit in (False, True):
            async with ScoringUnitOfWork(engine) as uow:
                assert await uow.leads.get_many_for_update([profile.lead_id]) == {}
                await uow.leads.save_many([profile], model_version="m", now=T0)
                assert await uow.claim([event]) == [event]
                if commit:
                    await uow.commit()
            assert await stored() == ((1, 1) if commit else (0, 0))
        async with ScoringUnitOfWork(engine) as uow:  # the claim is the first statement
            assert await uow.claim([form()]) != []
        assert await stored() == (1, 1)
    finally:
        await engine.dispose()


async def test_erasure_scrubs_rows_still_waiting_in_the_outbox(
    infra: Infra, database_url: str
) -> None:
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    fill = form()
    async with ScoringUnitOfWork(engine) as uow:
        await uow.emit([fill])  # any event with the lead's personal data, not yet published
        await uow.commit()
    async with ScoringUnitOfWork(engine) as uow:
        await uow.scrub_outbox(fill.lead_id)
        await uow.commit()
    async with engine.connect() as conn:
        payloads = (
            (
                await conn.execute(
                    sa.select(orm.outbox.c.payload).where(orm.outbox.c.lead_id == fill.lead_id)
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    assert len(payloads) == 1
    assert fill.lead.email and fill.lead.email not in repr(payloads)
    assert ERASED in repr(payloads)


async def test_a_relay_publishes_nothing_while_another_holds_the_schema_lock(
    infra: Infra, database_url: str
) -> None:
    """One relay at a time per schema (the advisory lock the claim takes): while another
    transaction holds it, a round publishes nothing and the rows stay; once it is released,
    they go out."""
    engine, lead_id, producer = await three_rows_waiting(infra, database_url, "relay-locked")
    relay = OutboxRelay(engine, orm.outbox, producer)
    async with engine.connect() as holder:
        await holder.execute(
            sa.select(sa.func.pg_advisory_lock(sa.func.hashtext(f"outbox:{orm.SCHEMA}")))
        )
        assert await relay.relay_once() == 0
        assert await waiting(engine, lead_id) == 3
        await holder.execute(
            sa.select(sa.func.pg_advisory_unlock(sa.func.hashtext(f"outbox:{orm.SCHEMA}")))
        )
        await holder.commit()
    published = 0
    while (batch := await relay.relay_once()) > 0:
        published += batch
    assert published >= 3
    assert await waiting(engine, lead_id) == 0
    await producer.stop()
    await engine.dispose()
