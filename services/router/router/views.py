"""Read models for router's API."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .adapters import orm


async def assignment(engine: AsyncEngine, assignment_id: uuid.UUID) -> dict[str, Any] | None:
    t = orm.assignments
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == assignment_id))).mappings().first()
    return dict(row) if row else None


async def deliveries(engine: AsyncEngine, *, status: str | None, lead_id: str | None,
                     limit: int) -> list[dict[str, Any]]:
    t = orm.deliveries
    query = sa.select(t.c.id, t.c.endpoint_id, t.c.event_type, t.c.lead_id, t.c.status,
                      t.c.attempts, t.c.next_attempt_at, t.c.last_status_code, t.c.last_error,
                      t.c.created_at, t.c.delivered_at).order_by(t.c.created_at.desc()).limit(limit)
    if status:
        query = query.where(t.c.status == status)
    if lead_id:
        query = query.where(t.c.lead_id == lead_id)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]
