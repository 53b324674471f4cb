"""The unit of work: one transaction holding state, the processed-event mark and the outbox rows.

Handlers own the transaction (they call ``commit``); repositories never commit. If a handler
raises, nothing it wrote survives, the event is not marked processed, and the offset is not
committed, so Kafka redelivers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from . import jsonio, tracing
from .contracts import Event, Serialised
from .db import copy_rows, driver
from .privacy import scrub


class Transaction(Protocol):
    """One database transaction a handler opens and commits."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...


class UnitOfWork(Transaction, Protocol):
    """What handlers need of any unit of work; services add their repositories."""

    async def claim(self, events: Sequence[Event]) -> list[Event]: ...
    async def emit(self, events: Sequence[Event | Serialised]) -> None: ...
    async def scrub_outbox(self, lead_id: str) -> None: ...


class CommonTables:
    def __init__(
        self,
        outbox: sa.Table,
        processed: sa.Table,
        deliveries: sa.Table | None = None,
        endpoint_states: sa.Table | None = None,
    ):
        self.outbox = outbox
        self.processed = processed
        self.deliveries = deliveries
        # INSERT … SELECT unnest(ids), unnest(types): one statement whatever the batch's size,
        # prepared once (a VALUES list is a new statement for every count); sent through
        # asyncpg directly, as SQLAlchemy's compile and parameter steps cost more than the insert
        self.claim_sql = (
            f"INSERT INTO {processed.schema}.{processed.name} (event_id, event_type) "
            "SELECT * FROM unnest($1::uuid[], $2::text[]) ON CONFLICT DO NOTHING "
            "RETURNING event_id"
        )
        # webhooks the same way: an executemany builds and plans a VALUES list for every count
        self.enqueue_sql = (
            None
            if deliveries is None
            else (
                f"INSERT INTO {deliveries.schema}.{deliveries.name} "
                "(id, endpoint_id, url, event_type, lead_id, payload, traceparent) "
                "SELECT i, e, u, t, l, p::jsonb, tp FROM unnest($1::text[], $2::text[], "
                "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) "
                "AS x(i, e, u, t, l, p, tp) ON CONFLICT DO NOTHING"
            )
        )
        # the same, each row leased to the deliverer of the transaction that queues it (its first
        # attempt, ``Deliverer.take``) unless its endpoint is disabled; returns the ids queued
        # and whether each was leased
        off = (
            ""
            if endpoint_states is None
            else (
                f"LEFT JOIN {endpoint_states.schema}.{endpoint_states.name} AS s "
                "ON s.endpoint_id = x.e AND s.disabled_at IS NOT NULL "
            )
        )
        on = "TRUE" if endpoint_states is None else "s.endpoint_id IS NULL"
        self.lease_sql = (
            None
            if deliveries is None
            else (
                f"INSERT INTO {deliveries.schema}.{deliveries.name} "
                "(id, endpoint_id, url, event_type, lead_id, payload, traceparent, attempts, "
                "lease_until) "
                f"SELECT x.i, x.e, x.u, x.t, x.l, x.p::jsonb, x.tp, CASE WHEN {on} THEN 1 ELSE 0 "
                f"END, CASE WHEN {on} THEN now() + $8 * interval '1 second' END "
                "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
                f"$6::text[], $7::text[]) AS x(i, e, u, t, l, p, tp) {off}ON CONFLICT DO NOTHING "
                "RETURNING id, lease_until IS NOT NULL"
            )
        )


class SqlTransaction:
    """One transaction on one connection, rolled back unless committed; subclasses add their
    repositories in ``_open``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    @property
    def conn(self) -> AsyncConnection:
        assert self._conn is not None, "unit of work used outside 'async with'"
        return self._conn

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        self._tx = await self._conn.begin()
        self._open(self._conn)
        return self

    def _open(self, conn: AsyncConnection) -> None:
        """Hook for subclasses to build repositories on the connection."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    async def commit(self) -> None:
        assert self._tx is not None
        await self._tx.commit()


class SqlUnitOfWork(SqlTransaction):
    """Base for each service's unit of work: a transaction with the processed-event marks, the
    outbox and the webhook queue."""

    def __init__(
        self, engine: AsyncEngine, tables: CommonTables, *, lease_webhooks_s: float | None = None
    ) -> None:
        super().__init__(engine)
        self._tables = tables
        self._lease_webhooks_s = lease_webhooks_s
        self.leased_webhooks: list[dict[str, Any]] = []
        """With ``lease_webhooks_s``: the webhooks ``enqueue_webhooks`` queued leased to this
        process for that long, for ``Deliverer.take`` once the transaction has committed."""

    async def claim(self, events: Sequence[Event]) -> list[Event]:
        """Mark incoming events processed, in one statement; returns those not processed before
        (a redelivery is left out), in order."""
        if not events:
            return []
        rows = await (await driver(self.conn)).fetch(
            self._tables.claim_sql, [e.event_id for e in events], [e.event_type for e in events]
        )
        claimed = {r[0] for r in rows}  # asyncpg's UUID is a uuid.UUID, equal and same hash
        fresh = []
        for event in events:
            if event.event_id in claimed:
                claimed.discard(event.event_id)  # a duplicate inside the batch counts once
                fresh.append(event)
        return fresh

    async def emit(self, events: Sequence[Event | Serialised]) -> None:
        """Write events to the outbox in one statement, in order; the relay publishes them
        after this transaction commits."""
        if not events:
            return
        columns: tuple[str, ...] = ("event_id", "event_type", "topic", "lead_id", "payload")
        rows: list[tuple[Any, ...]] = [
            (e.event_id, e.event_type, e.topic, e.lead_id, e.model_dump_json()) for e in events
        ]
        if tracing.enabled():  # each row carries its lead's trace on to Kafka
            columns += ("traceparent",)
            rows = [(*row, tracing.carry(e.lead_id)) for row, e in zip(rows, events, strict=True)]
        await copy_rows(self.conn, self._tables.outbox, columns, rows)

    async def scrub_outbox(self, lead_id: str) -> None:
        """Remove a lead's personal data from its outbox rows still waiting (erasure; published
        rows have already left the outbox)."""
        await self._scrub(self._tables.outbox, lead_id)

    async def scrub_webhooks(self, lead_id: str) -> None:
        """Remove a lead's personal data from its webhook deliveries, sent or waiting."""
        assert self._tables.deliveries is not None, "this service has no webhook queue"
        await self._scrub(self._tables.deliveries, lead_id)

    async def _scrub(self, t: sa.Table, lead_id: str) -> None:
        rows = (
            await self.conn.execute(sa.select(t.c.id, t.c.payload).where(t.c.lead_id == lead_id))
        ).all()
        for row in rows:
            await self.conn.execute(
                sa.update(t).where(t.c.id == row.id).values(payload=scrub(row.payload))
            )

    async def enqueue_webhooks(self, rows: Sequence[dict[str, Any]]) -> None:
        """Queue webhooks in this transaction, in one statement; each row has ``id`` (its
        stable webhook-id), ``endpoint_id``, ``url``, ``event_type``, ``lead_id`` and
        ``payload`` (and ``traceparent``, by default its lead's in the current trace scope), and a
        delivery id already queued is left as it is. With
        ``lease_webhooks_s``, the rows queued are leased and listed in ``leased_webhooks``
        (those of a disabled endpoint are queued as pending, not leased)."""
        sql = self._tables.enqueue_sql
        assert sql is not None and self._tables.lease_sql is not None, (
            "this service has no webhook queue"
        )
        if not rows:
            return
        columns = (
            [r["id"] for r in rows],
            [r["endpoint_id"] for r in rows],
            [r["url"] for r in rows],
            [r["event_type"] for r in rows],
            [r["lead_id"] for r in rows],
            [jsonio.dumps_str(r["payload"]) for r in rows],
            [r.setdefault("traceparent", tracing.carry(r["lead_id"])) for r in rows],
        )
        if self._lease_webhooks_s is None:
            await (await driver(self.conn)).execute(sql, *columns)
            return
        queued = await (await driver(self.conn)).fetch(
            self._tables.lease_sql, *columns, self._lease_webhooks_s
        )
        leased = {r[0] for r in queued if r[1]}
        for row in rows:
            if row["id"] in leased:
                leased.discard(row["id"])  # a delivery id given twice is queued and taken once
                self.leased_webhooks.append(row)
