"""What waits in a service's own tables: rows of its outbox not yet on Kafka, and webhooks or
alerts not yet delivered. Read by each service every ``BACKLOG_INTERVAL_S`` into its
``/metrics`` and by ``leadrelay status``."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST, QUEUED_DELIVERIES

BACKLOG_INTERVAL_S = 15.0
DELIVERY_STATES = ("pending", "dead", "gone")


async def outbox(conn: AsyncConnection, table: sa.Table, now: datetime) -> tuple[int, float]:
    """How many rows wait in ``table`` (an outbox), and for how many seconds the oldest has."""
    count, oldest = (
        await conn.execute(sa.select(sa.func.count(), sa.func.min(table.c.created_at)))
    ).one()
    return count, (now - oldest).total_seconds() if oldest is not None else 0.0


async def deliveries(conn: AsyncConnection, table: sa.Table) -> dict[str, int]:
    """How many of ``table``'s deliveries are in each state but delivered."""
    rows = await conn.execute(
        sa.select(table.c.status, sa.func.count())
        .where(table.c.status != "delivered")
        .group_by(table.c.status)
    )
    found = {status: n for status, n in rows}
    return {state: found.get(state, 0) for state in DELIVERY_STATES}


async def measure(
    engine: AsyncEngine,
    outbox_table: sa.Table | None,
    delivery_table: sa.Table | None,
    now: datetime,
) -> None:
    """Set the gauges of one service's outbox and delivery queue."""
    async with engine.connect() as conn:
        if outbox_table is not None:
            count, age = await outbox(conn, outbox_table, now)
            OUTBOX_BACKLOG.labels(outbox_table.schema).set(count)
            OUTBOX_OLDEST.labels(outbox_table.schema).set(age)
        if delivery_table is not None:
            for state, n in (await deliveries(conn, delivery_table)).items():
                QUEUED_DELIVERIES.labels(delivery_table.schema, state).set(n)
