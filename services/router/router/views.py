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


async def lead_assignments(engine: AsyncEngine, lead_id: str) -> list[dict[str, Any]]:
    t = orm.assignments
    query = (
        sa.select(
            t.c.id,
            t.c.kind,
            t.c.stage,
            t.c.owner_id,
            t.c.queue,
            t.c.team_id,
            t.c.strategy,
            t.c.previous_owner_id,
            t.c.config_version,
            t.c.created_at,
            t.c.decision["summary"].astext.label("summary"),
            t.c.decision["skipped"].label("skipped"),
        )
        .where(t.c.lead_id == lead_id)
        .order_by(t.c.created_at, t.c.id)
    )
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]
