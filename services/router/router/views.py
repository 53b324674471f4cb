"""Read models for router's API."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from leadrelay_shared.delivery import Endpoint
from sqlalchemy.ext.asyncio import AsyncEngine

from .adapters import orm


async def assignment(engine: AsyncEngine, assignment_id: uuid.UUID) -> dict[str, Any] | None:
    t = orm.assignments
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == assignment_id))).mappings().first()
    return dict(row) if row else None


async def lead_assignments(engine: AsyncEngine, lead_id: str) -> list[dict[str, Any]]:
    t = orm.assignments
    query = (sa.select(t.c.id, t.c.kind, t.c.stage, t.c.owner_id, t.c.queue, t.c.team_id,
                       t.c.strategy, t.c.previous_owner_id, t.c.config_version, t.c.created_at,
                       t.c.decision["summary"].astext.label("summary"),
                       t.c.decision["skipped"].label("skipped"))
             .where(t.c.lead_id == lead_id).order_by(t.c.created_at, t.c.id))
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def deliveries(engine: AsyncEngine, *, status: str | None, lead_id: str | None,
                     endpoint_id: str | None = None, limit: int) -> list[dict[str, Any]]:
    t = orm.deliveries
    query = sa.select(t.c.id, t.c.endpoint_id, t.c.event_type, t.c.lead_id, t.c.status,
                      t.c.attempts, t.c.next_attempt_at, t.c.last_status_code, t.c.last_error,
                      t.c.created_at, t.c.delivered_at).order_by(t.c.created_at.desc()).limit(limit)
    if status:
        query = query.where(t.c.status == status)
    if lead_id:
        query = query.where(t.c.lead_id == lead_id)
    if endpoint_id:
        query = query.where(t.c.endpoint_id == endpoint_id)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def delivery(engine: AsyncEngine, delivery_id: str) -> dict[str, Any] | None:
    t, a = orm.deliveries, orm.attempts
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == delivery_id))).mappings().first()
        if row is None:
            return None
        tries = (await conn.execute(
            sa.select(a.c.attempt, a.c.at, a.c.status_code, a.c.error, a.c.duration_ms)
            .where(a.c.delivery_id == delivery_id).order_by(a.c.id))).mappings().all()
    return {**dict(row), "attempt_log": [dict(r) for r in tries]}


async def endpoints(engine: AsyncEngine, configured: Mapping[str, Endpoint]
                    ) -> list[dict[str, Any]]:
    t, s = orm.deliveries, orm.endpoint_states
    async with engine.connect() as conn:
        states = {r.endpoint_id: r for r in await conn.execute(sa.select(s))}
        counts = (await conn.execute(sa.select(t.c.endpoint_id, t.c.status, sa.func.count())
                                     .group_by(t.c.endpoint_id, t.c.status))).all()
    by_endpoint: dict[str, dict[str, int]] = {}
    for endpoint_id, status, n in counts:
        by_endpoint.setdefault(endpoint_id, {})[status] = n
    out = []
    for endpoint_id in sorted(set(configured) | set(states) | set(by_endpoint)):
        ep, state = configured.get(endpoint_id), states.get(endpoint_id)
        out.append({"id": endpoint_id, "url": ep.url if ep else None, "configured": ep is not None,
                    "events": sorted(ep.event_types) if ep else [],
                    "format": ep.format if ep else None,
                    "disabled_at": state.disabled_at if state else None,
                    "disabled_reason": state.disabled_reason if state else None,
                    "deliveries": by_endpoint.get(endpoint_id, {})})
    return out
