"""Read models for sla-monitor's API: clocks on the run, breaches, compliance, a lead's SLA."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from .adapters import orm

GroupBy = Literal["rep", "team", "policy"]
_GROUP = {
    "rep": orm.clocks.c.owner_id,
    "team": orm.clocks.c.team_id,
    "policy": orm.clocks.c.policy_id,
}
_PUBLIC = [c for c in orm.clocks.c if c.name not in ("facts", "deadline_s")]


def _filters(
    query: sa.Select[Any],
    *,
    lead_id: str | None = None,
    team_id: str | None = None,
    owner_id: str | None = None,
    policy_id: str | None = None,
) -> sa.Select[Any]:
    t = orm.clocks
    for column, value in (
        (t.c.lead_id, lead_id),
        (t.c.team_id, team_id),
        (t.c.owner_id, owner_id),
        (t.c.policy_id, policy_id),
    ):
        if value:
            query = query.where(column == value)
    return query


def _row(r: Any, now: datetime) -> dict[str, Any]:
    row = dict(r)
    row["deadline_seconds"] = r.get("deadline_s")
    row.pop("deadline_s", None)
    if row["status"] == "open":
        row["seconds_left"] = round((row["due_at"] - now).total_seconds(), 3)
        row["overdue"] = row["seconds_left"] < 0
    return row


async def open_clocks(
    engine: AsyncEngine, *, now: datetime, limit: int, overdue: bool | None, **filters: str | None
) -> list[dict[str, Any]]:
    t = orm.clocks
    query = _filters(sa.select(*_PUBLIC, t.c.deadline_s).where(t.c.status == "open"), **filters)
    if overdue is not None:
        query = query.where(t.c.due_at <= now if overdue else t.c.due_at > now)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(t.c.due_at).limit(limit))).mappings().all()
    return [_row(r, now) for r in rows]


async def breaches(
    engine: AsyncEngine,
    *,
    now: datetime,
    limit: int,
    since: datetime | None,
    until: datetime | None,
    **filters: str | None,
) -> list[dict[str, Any]]:
    t = orm.clocks
    query = _filters(
        sa.select(*_PUBLIC, t.c.deadline_s).where(t.c.breached_at.is_not(None)), **filters
    )
    if since:
        query = query.where(t.c.breached_at >= since)
    if until:
        query = query.where(t.c.breached_at < until)
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(query.order_by(t.c.breached_at.desc()).limit(limit)))
            .mappings()
            .all()
        )
    return [_row(r, now) for r in rows]


async def compliance(
    engine: AsyncEngine,
    *,
    by: GroupBy,
    now: datetime,
    since: datetime | None,
    until: datetime | None,
    **filters: str | None,
) -> list[dict[str, Any]]:
    """First-touch compliance per rep, team or policy, from the stored clocks.

    A clock counts once its outcome is known: worked, or past its deadline. Within SLA means
    worked at or before the deadline. Median first touch is wall time from handoff to touch.
    """
    t, key = orm.clocks, _GROUP[by]
    worked = t.c.status == "worked"
    within = sa.and_(worked, t.c.ended_at <= t.c.due_at)
    measured = sa.or_(worked, t.c.due_at <= now)
    touch_s = sa.extract("epoch", t.c.ended_at - t.c.started_at)
    query = _filters(
        sa.select(
            key.label("key"),
            sa.func.count().label("clocks"),
            sa.func.count().filter(measured).label("measured"),
            sa.func.count().filter(within).label("within_sla"),
            sa.func.count().filter(t.c.breached_at.is_not(None)).label("breached"),
            sa.func.count().filter(t.c.status == "open").label("open"),
            sa.func.percentile_cont(0.5)
            .within_group(touch_s)
            .filter(worked)
            .label("median_first_touch_s"),
        )
        .where(t.c.phase == 0)
        .group_by(key)
        .order_by(key),
        **filters,
    )
    if since:
        query = query.where(t.c.started_at >= since)
    if until:
        query = query.where(t.c.started_at < until)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    out = []
    for r in rows:
        row = dict(r)
        row[by] = row.pop("key")
        row["pct_within_sla"] = round(100.0 * r.within_sla / r.measured, 1) if r.measured else None
        if row["median_first_touch_s"] is not None:
            row["median_first_touch_s"] = round(float(row["median_first_touch_s"]), 1)
        out.append(row)
    return out


async def lead(engine: AsyncEngine, lead_id: str, now: datetime) -> dict[str, Any]:
    t, a = orm.clocks, orm.alerts
    async with engine.connect() as conn:
        clocks = (
            (
                await conn.execute(
                    sa.select(*_PUBLIC, t.c.deadline_s)
                    .where(t.c.lead_id == lead_id)
                    .order_by(t.c.started_at, t.c.phase)
                )
            )
            .mappings()
            .all()
        )
        alerts = (
            (await conn.execute(sa.select(a).where(a.c.lead_id == lead_id).order_by(a.c.fired_at)))
            .mappings()
            .all()
        )
    return {
        "lead_id": lead_id,
        "clocks": [_row(r, now) for r in clocks],
        "alerts": [dict(r) for r in alerts],
    }


async def alerts(
    engine: AsyncEngine,
    *,
    level: str | None,
    since: datetime | None,
    limit: int,
    **filters: str | None,
) -> list[dict[str, Any]]:
    a = orm.alerts
    query = sa.select(a).order_by(a.c.fired_at.desc()).limit(limit)
    for column, value in (
        (a.c.level, level),
        (a.c.lead_id, filters.get("lead_id")),
        (a.c.team_id, filters.get("team_id")),
        (a.c.owner_id, filters.get("owner_id")),
        (a.c.policy_id, filters.get("policy_id")),
    ):
        if value:
            query = query.where(column == value)
    if since:
        query = query.where(a.c.fired_at >= since)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings().all()]


async def counts(engine: AsyncEngine, now: datetime) -> tuple[int, int]:
    """Open clocks, and those of them past their deadline (for the gauges)."""
    t = orm.clocks
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(sa.func.count(), sa.func.count().filter(t.c.due_at <= now)).where(
                    t.c.status == "open"
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def policy_versions(engine: AsyncEngine) -> list[dict[str, Any]]:
    p = orm.policies
    async with engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    sa.select(
                        p.c.version, p.c.checksum, p.c.first_loaded_at, p.c.last_activated_at
                    ).order_by(p.c.first_loaded_at.desc())
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]
