"""Read models for the API (queries only; no unit of work needed)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .adapters import orm


async def lead(engine: AsyncEngine, lead_id: str) -> dict[str, Any] | None:
    t = orm.leads
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.lead_id == lead_id))).mappings().first()
    return dict(row) if row else None


async def timeline(engine: AsyncEngine, lead_id: str) -> list[dict[str, Any]]:
    t = orm.timeline
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(t).where(t.c.lead_id == lead_id)
                                   .order_by(t.c.at, t.c.id))).mappings().all()
    return [{k: v for k, v in r.items() if k != "lead_id"} for r in rows]
