"""Read models for sla-monitor's API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .adapters import orm


async def clocks(engine: AsyncEngine, *, status: str, now: datetime, limit: int,
                 lead_id: str | None = None) -> list[dict[str, Any]]:
    t = orm.clocks
    order = t.c.due_at if status == "open" else t.c.breached_at.desc()
    query = sa.select(t).where(t.c.status == status).order_by(order).limit(limit)
    if lead_id:
        query = query.where(t.c.lead_id == lead_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    out = [dict(r) for r in rows]
    if status == "open":
        for row in out:
            row["seconds_left"] = round((row["due_at"] - now).total_seconds(), 3)
    return out
