"""Read models for the API (queries only; no unit of work needed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from . import domain
from .adapters import orm
from .adapters.repository import profile_from_row
from .config import ScoringModel


async def lead(
    engine: AsyncEngine, lead_id: str, model: ScoringModel, now: datetime
) -> dict[str, Any] | None:
    """The stored profile, its funnel passes, and the engagement score as it decays today."""
    t, h = orm.leads, orm.stage_history
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.lead_id == lead_id))).first()
        if row is None:
            return None
        history = (
            (
                await conn.execute(
                    sa.select(h).where(h.c.lead_id == lead_id).order_by(h.c.at, h.c.id)
                )
            )
            .mappings()
            .all()
        )
    profile = profile_from_row(row._mapping)
    engagement_now, parts = domain.engagement(profile.hits, model, now)
    passes: dict[int, list[dict[str, Any]]] = {}
    for step in history:
        passes.setdefault(step["cycle"], []).append(
            {
                "from_stage": step["from_stage"],
                "to_stage": step["to_stage"],
                "actor": step["actor"],
                "at": step["at"],
                "reasons": step["reasons"],
                "model_version": step["model_version"],
            }
        )
    return {
        "lead_id": lead_id,
        "stage": row.stage,
        "stage_entered_at": row.stage_entered_at,
        "fit_score": row.fit_score,
        "fit_grade": row.fit_grade,
        "engagement_score": row.engagement_score,
        "scored_at": row.updated_at,
        "model_version": row.model_version,
        "engagement_now": {
            "score": engagement_now,
            "at": now,
            "model_version": model.version,
            "contributions": [
                {"rule_id": p.rule_id, "points": p.points, "message": p.message} for p in parts
            ],
        },
        "cycle": row.cycle,
        "lead": row.snapshot,
        "erased_at": row.erased_at,
        "created_at": row.created_at,
        "passes": [{"cycle": c, "stages": steps} for c, steps in sorted(passes.items())],
    }


async def timeline(engine: AsyncEngine, lead_id: str) -> list[dict[str, Any]]:
    t = orm.timeline
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(t).where(t.c.lead_id == lead_id).order_by(t.c.at, t.c.id)
                )
            )
            .mappings()
            .all()
        )
    return [{k: v for k, v in r.items() if k != "lead_id"} for r in rows]


def model_summary(model: ScoringModel) -> dict[str, Any]:
    spec = model.spec
    return {
        "version": model.version,
        "checksum": model.checksum,
        "description": spec.description,
        "grades": dict(model.grades),
        "fit_rules": len(spec.fit),
        "engagement_rules": len(spec.engagement),
        "engagement_half_life_days": spec.engagement_half_life_days,
        "mql": spec.mql.model_dump(),
        "fast_lanes": [f.model_dump() for f in spec.fast_lanes],
        "timers": spec.timers.model_dump(),
    }
