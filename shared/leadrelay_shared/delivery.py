"""Outgoing webhooks from a persistent queue in PostgreSQL, signed per Standard Webhooks.

A delivery row is written in the same transaction as the decision it reports. Deliverers lease
due rows (``FOR UPDATE SKIP LOCKED`` inside an ``UPDATE ... RETURNING``), so several instances
never send the same attempt twice; the row id is the ``webhook-id`` and stays the same across
retries, so receivers can deduplicate. Failures are retried on a schedule with jitter, then the
row is dead-lettered (status ``dead``) and can be replayed.

A unit of work may also queue its rows already leased to its own process
(``SqlUnitOfWork(lease_webhooks_s=…)``); ``Deliverer.take`` then sends them once it has
committed, without a claim, and a claim passes them over until the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import aiohttp
import sqlalchemy as sa
from opentelemetry.trace import SpanKind
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from standardwebhooks.webhooks import Webhook

from . import jsonio, tracing
from .clock import utcnow
from .destinations import Destinations, GuardedResolver
from .logging import get_logger
from .metrics import DELIVERIES

log = get_logger(__name__)

# Retries over more than a day: 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h, 4h (about 27.7 hours).
DEFAULT_SCHEDULE_S: tuple[float, ...] = (
    5,
    30,
    120,
    600,
    1800,
    3600,
    7200,
    14400,
    28800,
    28800,
    14400,
)


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str
    event_types: frozenset[str] = frozenset()
    enabled: bool = True
    format: str = "standard"  # "standard" (the envelope), "slack" (a text) or "pagerduty"
    routing_key: str = ""  # PagerDuty Events API v2 integration key

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


class Delivery(NamedTuple):
    """A leased delivery, as an attempt needs it: claimed from the queue, or leased by the
    transaction that queued it (``Deliverer.take``). ``attempts`` counts this attempt."""

    id: str
    endpoint_id: str
    url: str
    event_type: str
    payload: dict[str, Any]
    lead_id: str
    attempts: int
    traceparent: str | None = None


DeadHook = Callable[[AsyncConnection, Delivery, "Outcome"], Awaitable[None]]
"""Called in the transaction that dead-letters a delivery (to queue an ops alert, say)."""


def body_for(endpoint: Endpoint, payload: Mapping[str, Any]) -> str:
    """The request body: the envelope as is, a Slack incoming-webhook message, or a PagerDuty
    Events API v2 event (``data.action`` trigger or resolve, ``data.dedup_key`` ties the two)."""
    data = payload.get("data") or {}
    text = data.get("text") or data.get("summary") or payload.get("type", "leadrelay")
    if endpoint.format == "slack":
        body: dict[str, Any] = {"text": f"[{payload.get('type')}] {text}"}
    elif endpoint.format == "pagerduty":
        action = data.get("action", "trigger")
        body = {
            "routing_key": endpoint.routing_key,
            "event_action": action,
            "dedup_key": data.get("dedup_key") or payload.get("type"),
        }
        if action == "trigger":
            body["payload"] = {
                "summary": str(text)[:1024],
                "source": data.get("source", "leadrelay"),
                "severity": data.get("severity", "error"),
                "timestamp": payload.get("timestamp"),
                "component": data.get("component"),
                "group": data.get("group"),
                "class": payload.get("type"),
                "custom_details": data.get("details", data),
            }
    else:
        body = dict(payload)
    return jsonio.dumps(body, fallback=str).decode()


def http_client(
    timeout_s: float, *, max_connections: int = 100, destinations: Destinations | None = None
) -> aiohttp.ClientSession:
    """The HTTP client deliveries go through: one pool of keep-alive connections, a whole
    attempt (connect, send, answer) bounded by ``timeout_s``, redirects not followed (a 3xx is a
    failed attempt). aiohttp rather than httpx: under concurrent requests httpx's connection pool
    costs milliseconds of CPU per request (encode/httpx#3215). Cookies a receiver
    sets are dropped, so nothing one endpoint says travels to another. With ``destinations``,
    a name connects only to the addresses they allow. Call it inside the running event loop."""
    resolver = GuardedResolver(destinations) if destinations is not None else None
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        connector=aiohttp.TCPConnector(limit=max_connections, resolver=resolver),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": "leadrelay-webhooks/1"},
    )


def stale_connection(exc: aiohttp.ClientError) -> bool:
    """The receiver closed the connection before answering, on a connection that was open
    already (not one that failed to connect). Most often a pooled keep-alive connection the
    receiver closed while idle, whose close this process had not yet read: a busy event loop
    reads it late, and aiohttp resends only idempotent methods on its own (RFC 9112, 9.3.1)."""
    return isinstance(exc, aiohttp.ServerDisconnectedError) or (
        isinstance(exc, aiohttp.ClientOSError) and not isinstance(exc, aiohttp.ClientConnectorError)
    )


class Deliverer:
    """Sends due deliveries. ``endpoints`` may be a callable, so a configuration reload takes
    effect without a restart. With ``states``, an endpoint answering 410 is disabled (its other
    deliveries wait, still pending, until it is enabled again); with ``attempts``, every attempt
    is logged for inspection."""

    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        endpoints: Mapping[str, Endpoint] | Callable[[], Mapping[str, Endpoint]],
        client: aiohttp.ClientSession,
        *,
        schedule: Sequence[float] = DEFAULT_SCHEDULE_S,
        batch_size: int = 50,
        lease_s: float = 60.0,
        poll_interval_s: float = 0.5,
        rnd: random.Random | None = None,
        states: sa.Table | None = None,
        attempts: sa.Table | None = None,
        on_dead: DeadHook | None = None,
        destinations: Destinations | None = None,
    ) -> None:
        self._engine = engine
        self._destinations = destinations
        self._table = table
        self._endpoints = endpoints if callable(endpoints) else (lambda e=dict(endpoints): e)
        self._states = states
        self._attempts = attempts
        self._on_dead = on_dead
        self._client = client
        self._schedule = tuple(schedule)
        self._batch = batch_size
        self._lease = lease_s
        self._poll = poll_interval_s
        self._rnd = rnd or random.Random()
        self._wake = asyncio.Event()
        self._stopping = False
        self._taken: set[asyncio.Task[None]] = set()

    @property
    def lease_s(self) -> float:
        return self._lease

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def take(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Send deliveries that their own transaction queued already leased to this process
        (``SqlUnitOfWork(lease_webhooks_s=…)``), once it has committed: each is attempted at
        once, without waiting for the loop's current round or claiming it. ``rows`` have the
        columns the unit of work queued; this is their first attempt. If this process stops
        before recording the attempt, the lease runs out and any deliverer claims the row, as
        it would a row leased by a claim."""
        if not rows:
            return
        task = asyncio.create_task(
            self._send_taken(
                [
                    Delivery(
                        r["id"],
                        r["endpoint_id"],
                        r["url"],
                        r["event_type"],
                        r["payload"],
                        r["lead_id"],
                        1,
                        r.get("traceparent"),
                    )
                    for r in rows
                ]
            )
        )
        self._taken.add(task)
        task.add_done_callback(self._taken.discard)

    async def _send_taken(self, rows: Sequence[Delivery]) -> None:
        try:
            await self._record_all(await asyncio.gather(*(self._attempt(row) for row in rows)))
        except Exception as exc:  # the lease runs out and a claim retries them
            log.warning("deliverer_failed", error=repr(exc), taken=len(rows))

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            if self._taken:
                await asyncio.gather(*self._taken, return_exceptions=True)

    async def _loop(self) -> None:
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
            await self._record_all(await asyncio.gather(*(self._attempt(row) for row in rows)))
        return len(rows)

    async def _claim(self) -> list[Delivery]:
        t = self._table
        lease_free = sa.or_(t.c.lease_until.is_(None), t.c.lease_until < sa.func.now())
        due = (
            sa.select(t.c.id)
            .where(t.c.status == "pending", t.c.next_attempt_at <= sa.func.now(), lease_free)
            .order_by(t.c.next_attempt_at)
            .limit(self._batch)
            .with_for_update(skip_locked=True)
        )
        if self._states is not None:
            s = self._states
            due = due.where(
                t.c.endpoint_id.not_in(
                    sa.select(s.c.endpoint_id).where(s.c.disabled_at.is_not(None))
                )
            )
        stmt = (
            sa.update(t)
            .where(t.c.id.in_(due.scalar_subquery()))
            .values(
                lease_until=sa.func.now() + timedelta(seconds=self._lease),
                attempts=t.c.attempts + 1,
            )
            .returning(
                t.c.id,
                t.c.endpoint_id,
                t.c.url,
                t.c.event_type,
                t.c.payload,
                t.c.lead_id,
                t.c.attempts,
                t.c.traceparent,
            )
        )
        async with self._engine.begin() as conn:
            return [Delivery(*row) for row in (await conn.execute(stmt)).all()]

    async def _attempt(self, row: Delivery) -> tuple[Delivery, Outcome, int]:
        endpoint = self._endpoints().get(row.endpoint_id)
        started = time.perf_counter()
        refused = (
            self._destinations.refusal(endpoint.url) if endpoint and self._destinations else None
        )
        with tracing.remote_span(
            f"{row.event_type} deliver",
            row.traceparent,
            kind=SpanKind.CLIENT,
            **{
                "leadrelay.lead_id": row.lead_id,
                "leadrelay.webhook.id": row.id,
                "leadrelay.webhook.endpoint": row.endpoint_id,
                "leadrelay.webhook.attempt": row.attempts,
            },
        ) as span:
            if endpoint is None:
                outcome = Outcome(
                    False, None, f"endpoint {row.endpoint_id!r} is no longer configured"
                )
            elif refused:
                outcome = Outcome(False, None, f"destination refused: {refused}")
            else:
                outcome = await self._post(endpoint, row)
            if outcome.status_code is not None:
                span.set_attribute("http.response.status_code", outcome.status_code)
            if not outcome.delivered:
                tracing.failed(span, outcome.error or "not delivered")
        return row, outcome, int((time.perf_counter() - started) * 1000)

    async def _post(self, endpoint: Endpoint, row: Delivery) -> Outcome:
        body = body_for(endpoint, row.payload)
        headers = sign(endpoint.secret, row.id, utcnow(), body)
        if traceparent := tracing.current_traceparent():  # the receiver may join the trace
            headers["traceparent"] = traceparent
        total = self._client.timeout.total
        deadline = time.monotonic() + (total or 0.0)
        try:
            try:
                status = await self._send(endpoint.url, body, headers, total)
            except aiohttp.ClientError as exc:
                if not stale_connection(exc):
                    raise
                # Sent again at once, in what is left of the attempt's time: the request went
                # out on a pooled connection the receiver had closed while it was idle, and the
                # webhook-id it carries lets a receiver drop a copy it did see.
                left = None if total is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError from exc
                status = await self._send(endpoint.url, body, headers, left)
        except TimeoutError:
            return Outcome(False, None, f"TimeoutError: no answer within {total} s")
        except aiohttp.ClientError as exc:
            return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= status < 300:
            return Outcome(True, status, None)
        return Outcome(False, status, f"HTTP {status}", gone=status == 410)

    async def _send(
        self, url: str, body: str, headers: Mapping[str, str], total: float | None
    ) -> int:
        async with self._client.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=total),
        ) as resp:
            await resp.read()  # the connection goes back to the pool for the next one
            return resp.status

    def _values(self, row: Delivery, outcome: Outcome, now: datetime) -> dict[str, Any]:
        """The row's new state after an attempt: delivered, retried later, or dead-lettered."""
        values: dict[str, Any] = {
            "b_status": "pending",
            "b_next": None,
            "b_delivered": None,
            "b_code": outcome.status_code,
            "b_error": outcome.error,
        }
        if outcome.delivered:
            return values | {"b_status": "delivered", "b_delivered": now}
        delay = None if outcome.gone else next_delay(row.attempts, self._schedule, self._rnd)
        if delay is None:
            log.error(
                "webhook_dead_lettered",
                delivery_id=row.id,
                endpoint=row.endpoint_id,
                attempts=row.attempts,
                last_error=outcome.error,
            )
            return values | {"b_status": "gone" if outcome.gone else "dead"}
        return values | {"b_next": now + timedelta(seconds=delay)}

    async def _record_all(self, results: Sequence[tuple[Delivery, Outcome, int]]) -> None:
        """Every attempt of one claim recorded in one transaction (a statement per table)."""
        t = self._table
        now = utcnow()
        updates = [
            {"b_id": row.id, **self._values(row, outcome, now)} for row, outcome, _ in results
        ]
        stmt = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"))
            .values(
                status=sa.bindparam("b_status"),
                lease_until=None,
                next_attempt_at=sa.func.coalesce(
                    sa.bindparam("b_next", type_=t.c.next_attempt_at.type), t.c.next_attempt_at
                ),
                delivered_at=sa.bindparam("b_delivered", type_=t.c.delivered_at.type),
                last_status_code=sa.bindparam("b_code", type_=sa.Integer),
                last_error=sa.bindparam("b_error", type_=sa.Text),
            )
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt, updates)
            if self._attempts is not None:
                await conn.execute(
                    sa.insert(self._attempts),
                    [
                        {
                            "delivery_id": row.id,
                            "attempt": row.attempts,
                            "at": now,
                            "status_code": o.status_code,
                            "error": o.error,
                            "duration_ms": ms,
                        }
                        for row, o, ms in results
                    ],
                )
            for (row, outcome, _), values in zip(results, updates, strict=True):
                if outcome.gone and self._states is not None:
                    await disable(
                        conn, self._states, row.endpoint_id, f"HTTP 410 on delivery {row.id}"
                    )
                if values["b_status"] in ("dead", "gone") and self._on_dead is not None:
                    await self._on_dead(conn, row, outcome)
        for values in updates:
            status = values["b_status"]
            DELIVERIES.labels(t.schema, "retry" if status == "pending" else status).inc()


async def disable(conn: AsyncConnection, states: sa.Table, endpoint_id: str, reason: str) -> None:
    stmt = insert(states).values(
        endpoint_id=endpoint_id,
        disabled_at=sa.func.now(),
        disabled_reason=reason,
        updated_at=sa.func.now(),
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[states.c.endpoint_id],
            set_={
                "disabled_at": sa.func.now(),
                "disabled_reason": reason,
                "updated_at": sa.func.now(),
            },
        )
    )
    log.error("webhook_endpoint_disabled", endpoint=endpoint_id, reason=reason)


async def enable(engine: AsyncEngine, states: sa.Table, endpoint_id: str) -> bool:
    """Let an endpoint receive again; its waiting deliveries go out. False if it was not off."""
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.update(states)
            .where(states.c.endpoint_id == endpoint_id, states.c.disabled_at.is_not(None))
            .values(disabled_at=None, disabled_reason=None, updated_at=sa.func.now())
        )
    return bool(result.rowcount)


async def replay(
    engine: AsyncEngine,
    table: sa.Table,
    delivery_ids: Sequence[str] | None = None,
    *,
    status: str = "dead",
    endpoint_id: str | None = None,
    lead_id: str | None = None,
) -> int:
    """Put dead (or given) deliveries back in the queue, due now; returns how many.

    Without ids, every delivery in ``status`` is replayed, optionally only those of one endpoint
    or one lead. The ``webhook-id`` stays the same, so a receiver that already has it can tell.
    """
    stmt = sa.update(table).values(
        status="pending", attempts=0, next_attempt_at=sa.func.now(), lease_until=None
    )
    if delivery_ids:
        stmt = stmt.where(table.c.id.in_(delivery_ids))
    else:
        stmt = stmt.where(table.c.status == status)
        if endpoint_id:
            stmt = stmt.where(table.c.endpoint_id == endpoint_id)
        if lead_id:
            stmt = stmt.where(table.c.lead_id == lead_id)
    async with engine.begin() as conn:
        return (await conn.execute(stmt)).rowcount
