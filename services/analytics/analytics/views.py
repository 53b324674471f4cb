"""The funnel's figures, computed in PostgreSQL from the read model. Every figure can be cut by
the lead's source and campaign (its first touch) and by its segment, territory, team and rep
(its latest assignment); ``docs/analytics.md`` defines each one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.contracts import Stage

from . import domain
from .adapters.orm import SCHEMA

By = Literal["month", "week", "day", "source", "campaign", "segment", "territory", "team", "rep"]
TIME_UNITS = ("month", "week", "day")
_DIMENSIONS = {
    "source": "l.source",
    "campaign": "l.campaign",
    "segment": "l.segment",
    "territory": "l.territory",
    "team": "l.team_id",
    "rep": "l.owner_id",
}


@dataclass(frozen=True)
class Cut:
    """Which leads a figure counts: the period its events fall in, and the lead's dimensions."""

    since: datetime
    until: datetime
    source: str | None = None
    campaign: str | None = None
    segment: str | None = None
    territory: str | None = None
    team: str | None = None
    rep: str | None = None

    def where(self) -> tuple[str, dict[str, Any]]:
        """SQL conditions on the lead ``l`` and their parameters (the period is not here)."""
        clauses, params = [], {}
        for name, column in _DIMENSIONS.items():
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{column} = :{name}")
                params[name] = value
        return "".join(f" AND {c}" for c in clauses), params


def _group(by: By | None, at: str) -> str:
    if by is None:
        return "NULL::text"
    if by in TIME_UNITS:
        return f"to_char(date_trunc('{by}', {at} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
    return _DIMENSIONS[by]


def _bucket_end(by: By | None, group: str | None, until: datetime) -> datetime:
    """When a group's entries end: its time bucket's end, or the period's."""
    if by not in TIME_UNITS or group is None:
        return until
    start = datetime.fromisoformat(group).replace(tzinfo=until.tzinfo)
    if by == "month":
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        end = start + timedelta(days=7 if by == "week" else 1)
    return min(end, until)


_T = f"{SCHEMA}.stage_changes"
_L = f"{SCHEMA}.leads"


def _cohort_sql(by: By | None, cuts: str) -> sa.TextClause:
    """Entries into one stage in the period, per group: how many, how many reached a later
    forward stage within the horizon, and how long that took (p50, p90, in seconds)."""
    return sa.text(
        f"""
        WITH cohort AS (
            SELECT s.lead_id, s.at, {_group(by, "s.at")} AS g
            FROM {_T} s JOIN {_L} l ON l.lead_id = s.lead_id
            WHERE s.to_stage = :stage AND s.at >= :since AND s.at < :until{cuts}
        ), reached AS (
            SELECT c.g, c.at, (
                SELECT min(x.at) FROM {_T} x
                WHERE x.lead_id = c.lead_id AND x.to_stage = ANY(:later)
                  AND x.at >= c.at AND x.at <= c.at + :horizon
            ) AS reached_at
            FROM cohort c
        )
        SELECT g, count(*) AS entered, count(reached_at) AS reached,
               percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY extract(epoch FROM reached_at - at)) AS p50,
               percentile_cont(0.9) WITHIN GROUP
                   (ORDER BY extract(epoch FROM reached_at - at)) AS p90
        FROM reached GROUP BY g
        """
    ).bindparams(sa.bindparam("later", type_=pg.ARRAY(sa.Text)))


def _balance_sql(by: By | None, cuts: str) -> sa.TextClause:
    group = "NULL::text" if by is None or by in TIME_UNITS else _DIMENSIONS[by]
    return sa.text(
        f"SELECT {group} AS g, l.stage, count(*) AS n FROM {_L} l "
        f"WHERE l.stage IS NOT NULL{cuts} GROUP BY 1, 2"
    )


async def waterfall(
    engine: AsyncEngine, cut: Cut, *, by: By | None, horizon: timedelta, now: datetime
) -> list[dict[str, Any]]:
    """Per group, per stage: entered in the period, balance now, cohort and period conversion
    to the next forward stage, and velocity. Groups in their natural order."""
    cuts, params = cut.where()
    params |= {"since": cut.since, "until": cut.until, "horizon": horizon}
    entries: dict[tuple[str | None, Stage], dict[str, Any]] = {}
    async with engine.connect() as conn:
        for stage in domain.STAGES:
            later = domain.later_than(stage) if stage in domain.FUNNEL else []
            rows = await conn.execute(
                _cohort_sql(by, cuts), params | {"stage": stage.value, "later": later}
            )
            for r in rows.mappings():
                entries[(r["g"], stage)] = dict(r)
        balances = {
            (r["g"], r["stage"]): r["n"]
            for r in (await conn.execute(_balance_sql(by, cuts), params)).mappings()
        }
    groups = sorted({g for g, _ in entries} | {g for g, _ in balances}, key=lambda g: g or "")
    out = []
    for g in groups:
        ripe = domain.mature(_bucket_end(by, g, cut.until), horizon, now)
        stages = []
        for i, stage in enumerate(domain.STAGES):
            e = entries.get((g, stage), {})
            entered = e.get("entered", 0)
            forward = stage in domain.FUNNEL and stage is not Stage.WON
            following = domain.FUNNEL[i + 1] if forward else None
            next_entered = entries.get((g, following), {}).get("entered", 0) if following else 0
            stages.append(
                {
                    "stage": stage.value,
                    "entered": entered,
                    "balance": balances.get((g, stage.value), 0),
                    "next_stage": following.value if following else None,
                    "reached_next": e.get("reached", 0) if forward else None,
                    "cohort_conversion": domain.conversion(e.get("reached", 0), entered)
                    if forward
                    else None,
                    "cohort_mature": ripe if forward else None,
                    "period_conversion": domain.conversion(next_entered, entered)
                    if forward
                    else None,
                    "velocity_p50_s": _seconds(e.get("p50")) if forward else None,
                    "velocity_p90_s": _seconds(e.get("p90")) if forward else None,
                }
            )
        out.append({"group": g, "stages": stages})
    return out


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


async def measured_rates(
    engine: AsyncEngine, cut: Cut, horizon: timedelta, now: datetime
) -> dict[str, domain.Measured]:
    """The cohort conversions of the period, for the planner's rates left out."""
    (whole,) = await waterfall(engine, cut, by=None, horizon=horizon, now=now) or [{"stages": []}]
    by_stage = {s["stage"]: s for s in whole["stages"]}
    out = {}
    for name, stage in zip(domain.RATE_NAMES, domain.FUNNEL, strict=False):
        s = by_stage.get(stage.value)
        out[name] = domain.Measured(s["cohort_conversion"] if s else None, s["entered"] if s else 0)
    return out


async def run_rates(engine: AsyncEngine, cut: Cut) -> dict[Stage, int]:
    """Entries into each forward stage in the period."""
    cuts, params = cut.where()
    sql = sa.text(
        f"SELECT s.to_stage, count(*) AS n FROM {_T} s JOIN {_L} l ON l.lead_id = s.lead_id "
        f"WHERE s.at >= :since AND s.at < :until{cuts} GROUP BY 1"
    )
    async with engine.connect() as conn:
        rows = await conn.execute(sql, params | {"since": cut.since, "until": cut.until})
        return {Stage(r.to_stage): r.n for r in rows}


async def average_won(engine: AsyncEngine, cut: Cut) -> tuple[Decimal | None, str | None]:
    """The average won amount in the period, in its currency (None when there is no won deal,
    or deals in more than one currency: then a deal size must be given)."""
    cuts, params = cut.where()
    sql = sa.text(
        f"SELECT f.currency, avg(f.amount_minor) AS avg, count(*) AS n "
        f"FROM {SCHEMA}.feedback f JOIN {_L} l ON l.lead_id = f.lead_id "
        f"WHERE f.feedback = 'won' AND f.amount_minor IS NOT NULL "
        f"AND f.at >= :since AND f.at < :until{cuts} GROUP BY 1"
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(sql, params | {"since": cut.since, "until": cut.until})).all()
    if len(rows) != 1:
        return None, None
    currency = rows[0].currency
    return domain.from_minor(round(rows[0].avg), currency), currency


def flatten(groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The waterfall as one row per group and stage (its CSV)."""
    return [{"group": g["group"], **s} for g in groups for s in g["stages"]]
