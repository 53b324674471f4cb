"""The outbox relay: publishes committed outbox rows to Kafka, in order, at least once.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` inside a transaction that also holds an advisory
lock per schema, so one relay at a time publishes a service's outbox and per-lead order is kept.
The lock is taken by the claim statement itself (one round trip less per round).
Rows are deleted only after Kafka acknowledged the whole batch (``acks=all``), in the claiming
transaction. A crash between the acknowledgement and the commit republishes the batch with the
same event ids, which every consumer ignores through its processed-events table: effectively
once, end to end.

The outbox is a queue: what was said lives on in Kafka and in each service's own history, so a
published row is deleted, never marked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from .codec import encode_json
from .db import any_of
from .kafka import BatchSender
from .logging import get_logger
from .metrics import OUTBOX_PUBLISHED, OUTBOX_WAIT

log = get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        producer: AIOKafkaProducer,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
        send_timeout_s: float = 10.0,
    ) -> None:
        self._engine = engine
        self._table = table
        self._sender = BatchSender(producer)
        self._batch_size = batch_size
        self._poll = poll_interval_s
        self._send_timeout = send_timeout_s
        self._lock_key = f"outbox:{table.schema}"
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows, so they go out without waiting a poll."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the batch in flight, then return from ``run``."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        backoff = self._poll
        while not self._stopping:
            try:
                published = await self.relay_once()
                backoff = self._poll
            except Exception as exc:
                log.warning("outbox_relay_failed", error=repr(exc), retry_in_s=backoff)
                published = 0
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if published < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                self._wake.clear()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        t = self._table
        # the advisory lock is taken in the claim itself: an uncorrelated subquery, evaluated
        # once before the scan; when another relay holds it, the claim returns no rows
        locked = sa.select(
            sa.func.pg_try_advisory_xact_lock(sa.func.hashtext(self._lock_key))
        ).scalar_subquery()
        async with self._engine.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        t.c.id,
                        t.c.event_type,
                        t.c.event_id,
                        t.c.lead_id,
                        sa.cast(t.c.payload, sa.Text).label("json"),
                        t.c.payload["occurred_at"].astext.label("occurred_at"),
                        t.c.payload["schema_version"].astext.label("schema_version"),
                        t.c.traceparent,
                        sa.extract("epoch", sa.func.clock_timestamp() - t.c.created_at).label(
                            "waited_s"
                        ),
                    )
                    .where(locked)
                    .order_by(t.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            await self._send_all(rows)
            await conn.execute(sa.delete(t).where(any_of(t.c.id, [r.id for r in rows])))
        OUTBOX_PUBLISHED.labels(t.schema).inc(len(rows))
        OUTBOX_WAIT.labels(t.schema).observe(float(rows[0].waited_s))
        return len(rows)

    async def _send_all(self, rows: Sequence[sa.Row[Any]]) -> None:
        """Send the batch in order and wait for every acknowledgement; raise if any is missing
        (the transaction then rolls back and the rows go out again). The JSON goes out as
        PostgreSQL writes it (``payload::text``, keys in jsonb's order, a space after each
        separator), rather than parsed only to be written again."""
        records = [
            encode_json(
                r.event_type,
                str(r.event_id),
                r.lead_id,
                r.occurred_at,
                r.schema_version,
                r.json.encode(),
                r.traceparent,
            )
            for r in rows
        ]
        failures = [
            f for f in await self._sender.send(records, self._send_timeout) if f is not None
        ]
        if failures:
            raise failures[0]
