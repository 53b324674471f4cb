"""The retention sweep on a real PostgreSQL: old processed ids and old delivered webhooks (with
their attempts) go, in batches; recent ids, and deliveries still waiting for an operator, stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade
from leadrelay_shared.retention import RetentionPolicy, RetentionTables, cutoffs, sweep
from router.adapters import orm
from router.adapters.repository import RouterUnitOfWork
from tests.factories import engagement, form

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
OLD, RECENT = NOW - timedelta(days=40), NOW - timedelta(days=1)
TABLES = RetentionTables(orm.processed, orm.deliveries, orm.attempts)


def test_cutoffs_name_what_goes_and_why() -> None:
    cuts = cutoffs(RetentionPolicy(), NOW, deliveries=True)
    assert [(c.table, c.before) for c in cuts] == [
        ("processed_events", NOW - timedelta(days=30)),
        ("webhook_deliveries", NOW - timedelta(days=30)),
    ]
    assert "30 days" in cuts[0].reason and "attempts" in cuts[1].reason
    assert [c.table for c in cutoffs(RetentionPolicy(), NOW, deliveries=False)] == [
        "processed_events"
    ]
    assert cutoffs(RetentionPolicy.from_days(0, 0), NOW, deliveries=True) == []
    assert RetentionPolicy.from_days(7.5, 0) == RetentionPolicy(timedelta(days=7.5), None)


async def test_sweep_removes_only_old_bookkeeping(database_url: str) -> None:
    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    try:
        old_ids = [uuid.uuid4() for _ in range(5)]
        recent = uuid.uuid4()
        deliveries = {  # id → (status, delivered_at, attempts)
            "old-delivered-1": ("delivered", OLD, 2),
            "old-delivered-2": ("delivered", OLD, 2),
            "old-delivered-3": ("delivered", OLD, 1),
            "new-delivered": ("delivered", RECENT, 1),
            "old-dead": ("dead", None, 3),
            "old-pending": ("pending", None, 1),
        }
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(orm.processed),
                [{"event_id": i, "event_type": "lead.scored", "processed_at": OLD} for i in old_ids]
                + [{"event_id": recent, "event_type": "lead.scored", "processed_at": RECENT}],
            )
            await conn.execute(
                sa.insert(orm.deliveries),
                [
                    {
                        "id": d,
                        "endpoint_id": "crm",
                        "url": "http://crm.test/hook",
                        "event_type": "lead.assigned",
                        "lead_id": "lead-1",
                        "payload": {"n": 1},
                        "status": status,
                        "created_at": OLD,
                        "delivered_at": at,
                    }
                    for d, (status, at, _) in deliveries.items()
                ],
            )
            await conn.execute(
                sa.insert(orm.attempts),
                [
                    {"delivery_id": d, "attempt": n + 1, "at": OLD, "status_code": 200}
                    for d, (_, _, attempts) in deliveries.items()
                    for n in range(attempts)
                ],
            )

        removed = await sweep(engine, TABLES, RetentionPolicy(), NOW, batch_size=2)

        assert removed == {"processed_events": 5, "webhook_deliveries": 3, "webhook_attempts": 5}
        async with engine.connect() as conn:
            kept_ids = set((await conn.execute(sa.select(orm.processed.c.event_id))).scalars())
            kept = set((await conn.execute(sa.select(orm.deliveries.c.id))).scalars())
            attempts = set((await conn.execute(sa.select(orm.attempts.c.delivery_id))).scalars())
        assert kept_ids == {recent}
        async with engine.connect() as conn:  # the sweep's lookups have indexes (migration 0003)
            indexes = set(
                (
                    await conn.execute(
                        sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = 'router'")
                    )
                ).scalars()
            )
        assert {"ix_processed_events_processed_at", "ix_webhook_deliveries_delivered_at"} <= indexes
        assert kept == {"new-delivered", "old-dead", "old-pending"}
        assert attempts == kept
        # a recent id still stops a redelivery; nothing is left for a second sweep
        async with RouterUnitOfWork(engine) as uow:
            assert not await uow.claim([form(event_id=recent)])
        again = await sweep(engine, TABLES, RetentionPolicy(), NOW, batch_size=2)
        assert again == {"processed_events": 0, "webhook_deliveries": 0}
    finally:
        await engine.dispose()


async def test_a_zero_horizon_keeps_everything(database_url: str) -> None:
    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    try:
        event = engagement("lead-1")
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(orm.processed).values(
                    event_id=event.event_id, event_type=event.event_type, processed_at=OLD
                )
            )
        assert await sweep(engine, TABLES, RetentionPolicy.from_days(0, 0), NOW) == {}
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(orm.processed)) == 1
    finally:
        await engine.dispose()
