"""Read models for the API (queries only; no unit of work needed)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared import jsonio
from leadrelay_shared.contracts import (
    EngagementRecorded,
    FeedbackReceived,
    FormSubmitted,
    Reason,
    Stage,
)
from leadrelay_shared.db import driver

from . import domain
from .adapters import orm
from .adapters.repository import profile_from_row
from .config import ScoringModel
from .simulation import Input, LeadInputs, Scored, Simulation, first_touch, simulate


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


# -- what-if: the inputs a simulation replays ---------------------------------------------------

INPUT_KINDS = ["form_submitted", "engagement", "feedback"]
INPUT_EVENTS: dict[str, type[Input]] = {
    "form_submitted": FormSubmitted,
    "engagement": EngagementRecorded,
    "feedback": FeedbackReceived,
}
# Through asyncpg directly. PostgreSQL writes each stored input as its contract's JSON (the
# timeline's fields, the lead's snapshot on a form fill) and pydantic validates that text in
# one call: a large window is hundreds of thousands of rows.
_ACTIVE = f"""
    SELECT DISTINCT lead_id FROM {orm.SCHEMA}.timeline
    WHERE at >= $1 AND at < $2 AND kind = ANY($3::text[])
    """
_INPUTS = f"""
    SELECT t.lead_id, t.kind, jsonb_strip_nulls(
        jsonb_build_object('lead_id', t.lead_id, 'event_id', t.event_id,
                           'occurred_at', t.at, 'received_at', t.at)
        || CASE t.kind
           WHEN 'form_submitted' THEN jsonb_build_object(
               'lead', l.snapshot, 'source_system', t.detail->'source_system',
               'utm', t.detail->'utm', 'page_url', t.detail->'page_url')
           WHEN 'engagement' THEN jsonb_build_object(
               'engagement_type', t.detail->'engagement_type', 'url', t.detail->'url',
               'campaign', t.detail->'campaign', 'properties', t.detail->'properties',
               'email_domain', l.snapshot->'email_domain')
           ELSE jsonb_build_object(
               'feedback', t.detail->'feedback', 'reason_code', t.detail->'reason_code',
               'actor_id', t.detail->'actor_id', 'opportunity_id', t.detail->'opportunity_id',
               'amount', t.detail->'amount', 'currency', t.detail->'currency')
           END)::text AS event
    FROM {orm.SCHEMA}.timeline t JOIN {orm.SCHEMA}.leads l ON l.lead_id = t.lead_id
    WHERE t.lead_id = ANY($1::text[]) AND t.at < $2 AND t.kind = ANY($3::text[])
    ORDER BY t.lead_id, t.at, t.id
    """
# where each lead stood when the window closed
_KEPT = f"""
    SELECT l.lead_id, l.fit_score, l.fit_grade,
           l.engagement_score, h.to_stage AS stage, h.reasons::text AS reasons,
           EXISTS (SELECT 1 FROM {orm.SCHEMA}.stage_history m
                   WHERE m.lead_id = l.lead_id AND m.to_stage = 'mql'
                     AND m.at >= $2 AND m.at < $3) AS became_mql
    FROM {orm.SCHEMA}.leads l
    LEFT JOIN LATERAL (
        SELECT to_stage, reasons FROM {orm.SCHEMA}.stage_history s
        WHERE s.lead_id = l.lead_id AND s.at < $3 ORDER BY s.at DESC, s.id DESC LIMIT 1
    ) h ON true
    WHERE l.lead_id = ANY($1::text[])
    """


async def lead_inputs(
    raw: Any, lead_ids: Sequence[str], since: datetime, until: datetime
) -> list[LeadInputs]:
    """The leads' events from their first to ``until`` and where they stood at ``until``, on
    an asyncpg connection. Each form fill carries the lead as scoring knows it now: the
    timeline keeps no personal data of its own."""
    rows = await raw.fetch(_INPUTS, lead_ids, until, INPUT_KINDS)
    kept = {r["lead_id"]: r for r in await raw.fetch(_KEPT, lead_ids, since, until)}
    out: list[LeadInputs] = []
    for lead_id, group in itertools.groupby(rows, key=lambda r: r["lead_id"]):
        lead = kept.get(lead_id)
        if lead is None:
            continue  # its events were claimed, its profile not yet written
        inputs = tuple(INPUT_EVENTS[r["kind"]].model_validate_json(r["event"]) for r in group)
        out.append(LeadInputs(lead_id, *first_touch(inputs), inputs, _before(lead)))
    return out


def _before(row: Mapping[str, Any]) -> Scored:
    reasons = jsonio.loads(row["reasons"]) if row["reasons"] else []
    return Scored(
        Stage(row["stage"]) if row["stage"] else None,
        row["fit_score"],
        row["fit_grade"],
        row["engagement_score"],
        row["became_mql"],
        tuple(Reason.model_validate(r) for r in reasons),
    )


async def what_if(
    engine: AsyncEngine,
    active: ScoringModel,
    candidate: ScoringModel,
    since: datetime,
    until: datetime,
) -> Simulation:
    """Every lead with an event in ``[since, until)`` re-scored under ``candidate``, beside
    where ``active`` left it; the replay runs in a thread, so the service goes on scoring
    while it does."""
    async with engine.connect() as conn:
        raw = await driver(conn)
        # a few large scans, which PostgreSQL's JIT would compile longer than they run
        await raw.execute("SET LOCAL jit = off")
        leads = [r["lead_id"] for r in await raw.fetch(_ACTIVE, since, until, INPUT_KINDS)]
        inputs = await lead_inputs(raw, leads, since, until)
    return await asyncio.to_thread(
        simulate, inputs, candidate, window=(since, until), active_version=active.version
    )
