"""Outgoing webhooks from a persistent queue in PostgreSQL, signed per Standard Webhooks.

A delivery row is written in the same transaction as the decision it reports. Deliverers lease
due rows (``FOR UPDATE SKIP LOCKED`` inside an ``UPDATE ... RETURNING``), so several instances
never send the same attempt twice; the row id is the ``webhook-id`` and stays the same across
retries, so receivers can deduplicate. Failures are retried on a schedule with jitter, then the
row is dead-lettered (status ``dead``) and can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks.webhooks import Webhook

from .logging import get_logger
from .metrics import DELIVERIES

log = get_logger(__name__)

# Retries over more than a day: 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h, 4h (about 27.7 hours).
DEFAULT_SCHEDULE_S: tuple[float, ...] = (
    5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800, 14400)


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str
    event_types: frozenset[str] = frozenset()
    enabled: bool = True

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)


def sign(secret: str, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    signature = Webhook(secret).sign(msg_id, timestamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def envelope(event_type: str, occurred_at: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": occurred_at.isoformat(), "data": dict(data)}


def next_delay(attempt: int, schedule: Sequence[float], rnd: random.Random) -> float | None:
    """Seconds before attempt ``attempt + 1``, with ±20% jitter; None when the schedule is spent."""
    if attempt > len(schedule):
        return None
    base = schedule[attempt - 1]
    return base * (0.8 + 0.4 * rnd.random())


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None
    gone: bool = False


class Deliverer:
    def __init__(self, engine: AsyncEngine, table: sa.Table, endpoints: Mapping[str, Endpoint],
                 client: httpx.AsyncClient, *, schedule: Sequence[float] = DEFAULT_SCHEDULE_S,
                 batch_size: int = 50, lease_s: float = 60.0, poll_interval_s: float = 0.5,
                 rnd: random.Random | None = None) -> None:
        self._engine = engine
        self._table = table
        self._endpoints = dict(endpoints)
        self._client = client
        self._schedule = tuple(schedule)
        self._batch = batch_size
        self._lease = lease_s
        self._poll = poll_interval_s
        self._rnd = rnd or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                n = await self.deliver_once()
            except Exception as exc:
                log.warning("deliverer_failed", error=repr(exc))
                n = 0
                await asyncio.sleep(self._poll)
            if n < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                self._wake.clear()

    async def deliver_once(self) -> int:
        rows = await self._claim()
        if rows:
            await asyncio.gather(*(self._attempt(row) for row in rows))
        return len(rows)

    async def _claim(self) -> list[sa.Row[Any]]:
        t = self._table
        due = (sa.select(t.c.id).where(t.c.status == "pending", t.c.next_attempt_at <= sa.func.now(),
                                       sa.or_(t.c.lease_until.is_(None), t.c.lease_until < sa.func.now()))
               .order_by(t.c.next_attempt_at).limit(self._batch).with_for_update(skip_locked=True))
        stmt = (sa.update(t).where(t.c.id.in_(due.scalar_subquery()))
                .values(lease_until=sa.func.now() + timedelta(seconds=self._lease),
                        attempts=t.c.attempts + 1)
                .returning(t.c.id, t.c.endpoint_id, t.c.url, t.c.event_type, t.c.payload,
                           t.c.attempts, t.c.created_at))
        async with self._engine.begin() as conn:
            return list((await conn.execute(stmt)).all())

    async def _attempt(self, row: sa.Row[Any]) -> None:
        endpoint = self._endpoints.get(row.endpoint_id)
        if endpoint is None:
            outcome = Outcome(False, None, f"endpoint {row.endpoint_id!r} is no longer configured")
        else:
            outcome = await self._post(endpoint, row)
        await self._record(row, outcome)

    async def _post(self, endpoint: Endpoint, row: sa.Row[Any]) -> Outcome:
        body = json.dumps(row.payload, separators=(",", ":"))
        headers = sign(endpoint.secret, row.id, datetime.now(timezone.utc), body)
        try:
            resp = await self._client.post(row.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= resp.status_code < 300:
            return Outcome(True, resp.status_code, None)
        return Outcome(False, resp.status_code, f"HTTP {resp.status_code}",
                       gone=resp.status_code == 410)

    async def _record(self, row: sa.Row[Any], outcome: Outcome) -> None:
        t = self._table
        values: dict[str, Any] = {"lease_until": None, "last_status_code": outcome.status_code,
                                  "last_error": outcome.error}
        if outcome.delivered:
            values |= {"status": "delivered", "delivered_at": sa.func.now()}
            label = "delivered"
        else:
            delay = None if outcome.gone else next_delay(row.attempts, self._schedule, self._rnd)
            if delay is None:
                values["status"] = "gone" if outcome.gone else "dead"
                label = values["status"]
                log.error("webhook_dead_lettered", delivery_id=row.id, endpoint=row.endpoint_id,
                          attempts=row.attempts, last_error=outcome.error)
            else:
                values["next_attempt_at"] = sa.func.now() + timedelta(seconds=delay)
                label = "retry"
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(t).where(t.c.id == row.id).values(**values))
        DELIVERIES.labels(t.schema, label).inc()


async def replay(engine: AsyncEngine, table: sa.Table, delivery_ids: Sequence[str] | None = None,
                 *, status: str = "dead") -> int:
    """Put dead (or given) deliveries back in the queue, due now; returns how many."""
    stmt = sa.update(table).values(status="pending", attempts=0, next_attempt_at=sa.func.now(),
                                   lease_until=None)
    stmt = stmt.where(table.c.id.in_(delivery_ids)) if delivery_ids else stmt.where(
        table.c.status == status)
    async with engine.begin() as conn:
        return (await conn.execute(stmt)).rowcount
