"""Retention: the bookkeeping tables that would otherwise grow with every event, swept on a timer.

Two kinds of rows are only bookkeeping once they are old enough:

* **processed event ids** (``processed_events``): the idempotency record. An id must be kept for
  as long as its event can be delivered again, so the horizon has to exceed the topics' retention
  (7 days under ``make run``) plus any consumer lag you tolerate; the default is 30 days.
* **delivered webhooks** (``webhook_deliveries`` with status ``delivered``, and their
  ``webhook_attempts``): the proof of delivery an operator looks at when a sales system says it
  never got a lead. Dead, gone and pending deliveries are never swept: they wait for an operator.

What each sweep removes is a pure function of the policy and ``now`` (``cutoffs``); the sweep
deletes in small batches, one short transaction each, so it never holds locks the consumers need.
A horizon of 0 days keeps those rows for ever. The lead's own history (scoring's timeline and
stage history, router's assignments, sla-monitor's clocks and breaches) is never swept: it is
what the product explains itself with, and erasure (``lead.erased``) scrubs its personal data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .db import any_of
from .logging import get_logger

log = get_logger(__name__)

SWEPT = Counter(
    "leadrelay_retention_deleted_total", "Rows removed by the retention sweep", ["schema", "table"]
)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long bookkeeping rows are kept; None keeps them for ever."""

    processed_events: timedelta | None = timedelta(days=30)
    delivered_webhooks: timedelta | None = timedelta(days=30)

    @classmethod
    def from_days(cls, processed_events: float, delivered_webhooks: float) -> RetentionPolicy:
        """From settings in days, where 0 means keep for ever."""

        def days(value: float) -> timedelta | None:
            return timedelta(days=value) if value > 0 else None

        return cls(days(processed_events), days(delivered_webhooks))


@dataclass(frozen=True, slots=True)
class Cutoff:
    table: str  # "processed_events" or "webhook_deliveries"
    before: datetime  # rows older than this go
    reason: str


def cutoffs(policy: RetentionPolicy, now: datetime, *, deliveries: bool) -> list[Cutoff]:
    """What a sweep at ``now`` removes, with why (pure)."""
    out = []
    if policy.processed_events is not None:
        out.append(
            Cutoff(
                "processed_events",
                now - policy.processed_events,
                f"event ids processed more than {_days(policy.processed_events)} ago",
            )
        )
    if deliveries and policy.delivered_webhooks is not None:
        out.append(
            Cutoff(
                "webhook_deliveries",
                now - policy.delivered_webhooks,
                f"webhooks delivered more than {_days(policy.delivered_webhooks)} ago, "
                "with their attempts",
            )
        )
    return out


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86400:g} days"


@dataclass(frozen=True, slots=True)
class RetentionTables:
    processed: sa.Table
    deliveries: sa.Table | None = None
    attempts: sa.Table | None = None


async def sweep(
    engine: AsyncEngine,
    tables: RetentionTables,
    policy: RetentionPolicy,
    now: datetime,
    *,
    batch_size: int = 5000,
) -> dict[str, int]:
    """Remove what ``cutoffs`` names, ``batch_size`` rows per transaction; returns the count per
    table (``webhook_attempts`` counted on its own)."""
    removed: dict[str, int] = {}
    for cut in cutoffs(policy, now, deliveries=tables.deliveries is not None):
        while True:
            async with engine.begin() as conn:
                counts = await _delete_batch(conn, tables, cut, batch_size)
            for table, n in counts.items():
                removed[table] = removed.get(table, 0) + n
                if n:
                    SWEPT.labels(tables.processed.schema, table).inc(n)
            if counts.get(cut.table, 0) < batch_size:
                break
    return removed


async def _delete_batch(
    conn: AsyncConnection, tables: RetentionTables, cut: Cutoff, batch_size: int
) -> dict[str, int]:
    if cut.table == "processed_events":
        t = tables.processed
        doomed = sa.select(t.c.event_id).where(t.c.processed_at < cut.before).limit(batch_size)
        result = await conn.execute(sa.delete(t).where(t.c.event_id.in_(doomed.scalar_subquery())))
        return {"processed_events": result.rowcount}
    d = tables.deliveries
    assert d is not None
    ids = (
        (
            await conn.execute(
                sa.select(d.c.id)
                .where(d.c.status == "delivered", d.c.delivered_at < cut.before)
                .limit(batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if not ids:
        return {"webhook_deliveries": 0}
    counts = {}
    if tables.attempts is not None:
        a = tables.attempts
        gone = await conn.execute(sa.delete(a).where(any_of(a.c.delivery_id, ids)))
        counts["webhook_attempts"] = gone.rowcount
    gone = await conn.execute(sa.delete(d).where(any_of(d.c.id, ids)))
    counts["webhook_deliveries"] = gone.rowcount
    return counts


async def sweep_and_log(
    engine: AsyncEngine, tables: RetentionTables, policy: RetentionPolicy, now: datetime
) -> int:
    """One sweep, logged when it removed anything; how many rows it removed."""
    removed = await sweep(engine, tables, policy, now)
    if any(removed.values()):
        log.info("retention_swept", schema=tables.processed.schema, **removed)
    return sum(removed.values())
