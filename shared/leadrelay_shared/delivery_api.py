"""The webhook queue over HTTP, for every service that delivers webhooks: list and inspect
deliveries with their attempt log, replay one or in bulk, see and re-enable endpoints.

Reads are open to the internal network; replays and enabling need the dependency ``admin``.
The app provides ``app.state.engine`` and ``app.state.wake()`` (wakes the deliverer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from . import delivery
from .delivery import Endpoint
from .web import EngineDep as Engine
from .web import problem

Status = Literal["pending", "delivered", "dead", "gone"]


class DeliverySummary(BaseModel):
    id: str = Field(description="the stable webhook-id")
    endpoint_id: str
    event_type: str
    lead_id: str
    status: Status
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Deliveries(BaseModel):
    items: list[DeliverySummary]


class Attempt(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int | None


class DeliveryDetail(DeliverySummary):
    url: str
    payload: dict[str, Any]
    lease_until: datetime | None
    attempt_log: list[Attempt]


class Replayed(BaseModel):
    replayed: int


class EndpointState(BaseModel):
    id: str
    url: str | None
    configured: bool = Field(description="false for an endpoint no longer in the configuration")
    events: list[str]
    format: str | None
    disabled_at: datetime | None = Field(description="set when it answered 410 Gone")
    disabled_reason: str | None
    deliveries: dict[str, int] = Field(description="its deliveries by status")


class EndpointStates(BaseModel):
    items: list[EndpointState]


class Enabled(BaseModel):
    enabled: bool


class DeliveryNotFound(LookupError):
    """No delivery with that id."""


@dataclass(frozen=True)
class QueueTables:
    deliveries: sa.Table
    attempts: sa.Table
    states: sa.Table


async def deliveries(
    engine: AsyncEngine,
    t: sa.Table,
    *,
    status: str | None,
    lead_id: str | None,
    endpoint_id: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    query = (
        sa.select(
            t.c.id,
            t.c.endpoint_id,
            t.c.event_type,
            t.c.lead_id,
            t.c.status,
            t.c.attempts,
            t.c.next_attempt_at,
            t.c.last_status_code,
            t.c.last_error,
            t.c.created_at,
            t.c.delivered_at,
        )
        .order_by(t.c.created_at.desc())
        .limit(limit)
    )
    if status:
        query = query.where(t.c.status == status)
    if lead_id:
        query = query.where(t.c.lead_id == lead_id)
    if endpoint_id:
        query = query.where(t.c.endpoint_id == endpoint_id)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def one(engine: AsyncEngine, tables: QueueTables, delivery_id: str) -> dict[str, Any] | None:
    t, a = tables.deliveries, tables.attempts
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == delivery_id))).mappings().first()
        if row is None:
            return None
        tries = (
            (
                await conn.execute(
                    sa.select(a.c.attempt, a.c.at, a.c.status_code, a.c.error, a.c.duration_ms)
                    .where(a.c.delivery_id == delivery_id)
                    .order_by(a.c.id)
                )
            )
            .mappings()
            .all()
        )
    return {**dict(row), "attempt_log": [dict(r) for r in tries]}


async def endpoints(
    engine: AsyncEngine, tables: QueueTables, configured: Mapping[str, Endpoint]
) -> list[dict[str, Any]]:
    t, s = tables.deliveries, tables.states
    async with engine.connect() as conn:
        states = {r.endpoint_id: r for r in await conn.execute(sa.select(s))}
        counts = (
            await conn.execute(
                sa.select(t.c.endpoint_id, t.c.status, sa.func.count()).group_by(
                    t.c.endpoint_id, t.c.status
                )
            )
        ).all()
    by_endpoint: dict[str, dict[str, int]] = {}
    for endpoint_id, status, n in counts:
        by_endpoint.setdefault(endpoint_id, {})[status] = n
    out = []
    for endpoint_id in sorted(set(configured) | set(states) | set(by_endpoint)):
        ep, state = configured.get(endpoint_id), states.get(endpoint_id)
        out.append(
            {
                "id": endpoint_id,
                "url": ep.url if ep else None,
                "configured": ep is not None,
                "events": sorted(ep.event_types) if ep else [],
                "format": ep.format if ep else None,
                "disabled_at": state.disabled_at if state else None,
                "disabled_reason": state.disabled_reason if state else None,
                "deliveries": by_endpoint.get(endpoint_id, {}),
            }
        )
    return out


def queue_router(
    tables: QueueTables,
    *,
    admin: Any,
    configured: Callable[[Request], Mapping[str, Endpoint]],
    endpoints_path: str = "/webhooks",
    prefix: str = "",
    tags: list[str | Enum] | None = None,
) -> APIRouter:
    """``/deliveries`` and ``{endpoints_path}`` routes over one service's queue tables."""
    api = APIRouter(prefix=prefix, tags=tags or ["webhooks"])

    @api.get("/deliveries", response_model=Deliveries)
    async def list_deliveries(
        engine: Engine,
        status: Status | None = None,
        lead_id: str | None = None,
        endpoint_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        return {
            "items": await deliveries(
                engine,
                tables.deliveries,
                status=status,
                lead_id=lead_id,
                endpoint_id=endpoint_id,
                limit=limit,
            )
        }

    @api.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
    async def inspect_delivery(delivery_id: str, engine: Engine) -> dict[str, Any]:
        """One delivery with its payload and every attempt (time, status code, error, duration)."""
        found = await one(engine, tables, delivery_id)
        if found is None:
            raise DeliveryNotFound(f"delivery_id: no delivery {delivery_id}")
        return found

    @api.post("/deliveries/{delivery_id}/replay", dependencies=[admin], response_model=Replayed)
    async def replay_one(delivery_id: str, engine: Engine, request: Request) -> dict[str, int]:
        count = await delivery.replay(engine, tables.deliveries, [delivery_id])
        if count == 0:
            raise DeliveryNotFound(f"delivery_id: no delivery {delivery_id}")
        request.app.state.wake()
        return {"replayed": count}

    @api.post("/deliveries/replay", dependencies=[admin], response_model=Replayed)
    async def replay_bulk(
        engine: Engine,
        request: Request,
        status: Status = "dead",
        endpoint_id: str | None = None,
        lead_id: str | None = None,
    ) -> dict[str, int]:
        """Replay every delivery in ``status`` (dead by default), optionally of one endpoint or
        lead."""
        count = await delivery.replay(
            engine, tables.deliveries, status=status, endpoint_id=endpoint_id, lead_id=lead_id
        )
        request.app.state.wake()
        return {"replayed": count}

    @api.get(endpoints_path, response_model=EndpointStates)
    async def list_endpoints(engine: Engine, request: Request) -> dict[str, Any]:
        """Configured endpoints, whether each is disabled (410) and its deliveries by status."""
        return {"items": await endpoints(engine, tables, configured(request))}

    @api.post(
        endpoints_path + "/{endpoint_id}/enable", dependencies=[admin], response_model=Enabled
    )
    async def enable_endpoint(
        endpoint_id: str, engine: Engine, request: Request
    ) -> dict[str, bool]:
        """Receive again after a 410; deliveries that waited go out now."""
        enabled = await delivery.enable(engine, tables.states, endpoint_id)
        request.app.state.wake()
        return {"enabled": enabled}

    return api


async def on_delivery_not_found(_: Request, exc: Exception) -> Any:
    return problem(404, "Not found", str(exc), type_="https://leadrelay.dev/problems/not-found")
