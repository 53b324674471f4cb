"""The funnel's figures, computed in PostgreSQL from the read model. Every figure can be cut by
the lead's source and campaign (its first touch) and by its segment, territory, team and rep
(its latest assignment); ``docs/analytics.md`` defines each one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


SERVER_SETTINGS = {
    "jit": "off",
    "plan_cache_mode": "force_custom_plan",
    "work_mem": "64MB",
    "timezone": "UTC",
}
"""For analytics' connections: its reports run in well under a second, and PostgreSQL's JIT
would spend longer compiling them than running them; each report is planned for its own
period and stage (a plan made once for any stage and period scans a year of stage changes);
velocity sorts a stage's entries in memory; days and months are UTC days and months."""


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

    def where(self, columns: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
        """SQL conditions on the lead ``l`` (or on ``columns`` where given) and their
        parameters (the period is not here)."""
        clauses, params = [], {}
        for name, column in (_DIMENSIONS | (columns or {})).items():
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


def _starts(by: By, since: datetime, until: datetime) -> list[datetime]:
    """The UTC starts of the time buckets that ``[since, until)`` touches: a waterfall finds
    each entry's bucket among them (``width_bucket``), which costs less than truncating each
    entry's time."""
    first = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "month":
        first = first.replace(day=1)
    elif by == "week":
        first -= timedelta(days=first.weekday())
    out = [first]
    while (end := _bucket_end(by, out[-1].strftime("%Y-%m-%d"), until)) < until:
        out.append(end)
    return out


_T = f"{SCHEMA}.stage_changes"
_L = f"{SCHEMA}.leads"


# a stage change carries its lead's dimensions (kept by the writer), so a waterfall reads it alone
_OF_STAGE_CHANGE = {
    "source": "s.source",
    "campaign": "s.campaign",
    "segment": "s.segment",
    "territory": "s.territory",
    "team": "s.team_id",
    "rep": "s.owner_id",
}


# a stage change's time bucket, as the place of its start in ``:starts`` (see ``_starts``)
_BUCKET = "width_bucket(s.at, CAST(:starts AS timestamptz[]))"


def _entered_sql(by: By | None, cuts: str) -> sa.TextClause:
    """Entries into each stage in the period, per group: the whole UTC months' from their
    monthly counts (``stage_months``, unless grouped by week or day), the other whole days'
    from the daily counts (``stage_days``), the part days' at either end counted from the
    stage changes (see ``_period``)."""
    if by in TIME_UNITS:
        of_day = "width_bucket(s.day, CAST(:start_days AS date[]))"
        of_month = "width_bucket(s.month, CAST(:start_days AS date[]))"
        of_change = _BUCKET
    else:
        of_day = of_month = of_change = "NULL::text" if by is None else _OF_STAGE_CHANGE[by]
    return sa.text(
        f"SELECT g, stage, sum(n) AS n FROM ("
        f"SELECT {of_month} AS g, s.to_stage AS stage, s.entered AS n "
        f"FROM {SCHEMA}.stage_months s WHERE s.month >= :m0 AND s.month < :m1{cuts} "
        f"UNION ALL SELECT {of_day}, s.to_stage, s.entered FROM {SCHEMA}.stage_days s "
        f"WHERE (s.day >= :d0 AND s.day < :m0 OR s.day >= :m1 AND s.day < :d1){cuts} "
        f"UNION ALL SELECT {of_change}, s.to_stage, 1 FROM {_T} s "
        f"WHERE (s.at >= :since AND s.at < :first OR s.at >= :end AND s.at < :until){cuts}"
        f") e GROUP BY 1, 2"
    )


def _period(cut: Cut, by: By | None = None) -> dict[str, Any]:
    """The parameters of ``_entered_sql``: the period's whole UTC days ``[first, end)`` (as
    dates ``[d0, d1)``) and the whole months among them ``[m0, m1)``; an empty range where
    there is none (and no months when grouped by week or day)."""
    first, end = whole_days(cut.since, cut.until) or (cut.until, cut.until)
    d0, d1 = first.date(), end.date()
    m0 = d0 if d0.day == 1 else (d0.replace(day=28) + timedelta(days=4)).replace(day=1)
    m1 = d1.replace(day=1)
    if by in ("week", "day") or m0 >= m1:
        m0 = m1 = d0
    return {
        "since": cut.since,
        "until": cut.until,
        "first": first,
        "end": end,
        "d0": d0,
        "d1": d1,
        "m0": m0,
        "m1": m1,
    }


def _velocity_sql(by: By | None, cuts: str) -> sa.TextClause:
    """Of one stage's entries in the period, per group: how many reached a later forward stage
    within the horizon, and how long that took, p50 and p90 in seconds (read from the index
    of the entries that went on, a stage at a time)."""
    group = "NULL::text" if by is None else (_BUCKET if by in TIME_UNITS else _OF_STAGE_CHANGE[by])
    return sa.text(
        f"SELECT {group} AS g, count(*) AS reached, percentile_cont(ARRAY[0.5, 0.9]) "
        f"WITHIN GROUP (ORDER BY date_part('epoch', s.next_at - s.at)) AS p FROM {_T} s "
        f"WHERE s.to_stage = :stage AND s.next_at IS NOT NULL "
        f"AND s.next_at <= s.at + :horizon AND s.at >= :since AND s.at < :until{cuts} "
        f"GROUP BY 1"
    )


def _balance_sql(by: By | None, cuts: str) -> sa.TextClause:
    group = "NULL::text" if by is None or by in TIME_UNITS else _DIMENSIONS[by]
    return sa.text(
        f"SELECT {group} AS g, l.stage, sum(l.leads) AS n FROM {SCHEMA}.stage_balances l "
        f"WHERE l.leads <> 0{cuts} GROUP BY 1, 2"
    )


async def waterfall(
    engine: AsyncEngine, cut: Cut, *, by: By | None, horizon: timedelta, now: datetime
) -> list[dict[str, Any]]:
    """Per group, per stage: entered in the period, balance now, cohort and period conversion
    to the next forward stage, and velocity. Groups in their natural order."""
    cuts, params = cut.where()
    stage_cuts, _ = cut.where(_OF_STAGE_CHANGE)
    params |= _period(cut, by) | {"horizon": horizon}
    starts = _starts(by, cut.since, cut.until) if by in TIME_UNITS else []
    params |= {"starts": starts, "start_days": [t.date() for t in starts]}
    velocity = _velocity_sql(by, stage_cuts)
    going_on = [s for s in domain.FUNNEL if s is not Stage.WON]

    async def rows(sql: sa.TextClause, **more: Any) -> Sequence[sa.RowMapping]:
        async with engine.connect() as conn:
            return (await conn.execute(sql, params | more)).mappings().all()

    # scans of their own, each stage's velocity too: on connections of their own they run
    # side by side on the server's cores
    counted, balanced, *timed = await asyncio.gather(
        rows(_entered_sql(by, stage_cuts)),
        rows(_balance_sql(by, cuts)),
        *(rows(velocity, stage=s.value) for s in going_on),
    )
    # a time bucket comes back as its place in ``starts``: named by its first day
    named = {i: t.strftime("%Y-%m-%d") for i, t in enumerate(starts, 1)}

    def group(r: sa.RowMapping) -> str | None:
        return named[r["g"]] if named else r["g"]

    entries: dict[tuple[str | None, Stage], dict[str, Any]] = {
        (group(r), Stage(r["stage"])): {"entered": int(r["n"])} for r in counted if r["n"]
    }
    for step, found in zip(going_on, timed, strict=True):
        for r in found:
            p50, p90 = r["p"]
            entries.setdefault((group(r), step), {"entered": 0}).update(
                reached=r["reached"], p50=p50, p90=p90
            )
    balances = {(r["g"], r["stage"]): int(r["n"]) for r in balanced if r["n"]}
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


def whole_days(since: datetime, until: datetime) -> tuple[datetime, datetime] | None:
    """The UTC days wholly inside ``[since, until)``, as their first instant and the instant
    after the last; None when there is none."""
    first = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if first < since:
        first += timedelta(days=1)
    end = until.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (first, end) if first < end else None


async def run_rates(engine: AsyncEngine, cut: Cut) -> dict[Stage, int]:
    """Entries into each stage in the period (cut on the dimensions each stage change keeps, as
    the waterfall's entries are), read as the waterfall reads them (``_entered_sql``)."""
    cuts, params = cut.where(_OF_STAGE_CHANGE)
    async with engine.connect() as conn:
        rows = await conn.execute(_entered_sql(None, cuts), params | _period(cut))
        return {Stage(r.stage): int(r.n) for r in rows if r.n}


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


# -- speed to lead ------------------------------------------------------------------------------

SPEED_BANDS_S = (300, 900, 3600)  # within 5, 15 and 60 minutes
# team and rep of a handoff are its assignment's, not the lead's latest
_OF_ASSIGNMENT = {"team": "a.team_id", "rep": "a.owner_id"}


def _speed_columns(name: str, start: str, end: str) -> str:
    span = f"extract(epoch FROM {end} - {start})"
    bands = ", ".join(
        f"count(*) FILTER (WHERE {span} <= {s}) AS {name}_within_{s // 60}m" for s in SPEED_BANDS_S
    )
    return (
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {span}) AS {name}_p50_s, "
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY {span}) AS {name}_p90_s, "
        f"count({end} - {start}) AS {name}_measured, {bands}"
    )


async def speed_to_lead(engine: AsyncEngine, cut: Cut, *, by: By | None) -> list[dict[str, Any]]:
    """First assignments of leads in the period: form fill to assignment (the system's part),
    assignment to the owner's first touch (the rep's part), form fill to first touch; p50, p90
    and how many within 5, 15 and 60 minutes, per group."""
    cuts, params = cut.where(_OF_ASSIGNMENT)
    group = (
        "NULL::text"
        if by is None
        else (
            _OF_ASSIGNMENT.get(by) or (_group(by, "a.at") if by in TIME_UNITS else _DIMENSIONS[by])
        )
    )
    # MATERIALIZED: each handoff's two look-ups run once, not once for every aggregate below
    sql = sa.text(
        f"""
        WITH handoffs AS MATERIALIZED (
            SELECT {group} AS g, a.at AS assigned_at,
                   (SELECT max(t.at) FROM {SCHEMA}.touches t WHERE t.lead_id = a.lead_id
                      AND t.kind = 'form' AND t.at <= a.at) AS form_at,
                   (SELECT min(t.at) FROM {SCHEMA}.touches t WHERE t.lead_id = a.lead_id
                      AND t.origin = 'sales' AND t.actor_id = a.owner_id
                      AND t.at >= a.at) AS touched_at
            FROM {SCHEMA}.assignments a JOIN {_L} l ON l.lead_id = a.lead_id
            WHERE NOT a.reassignment AND a.at >= :since AND a.at < :until{cuts}
        )
        SELECT g, count(*) AS handoffs, count(touched_at) AS touched,
               {_speed_columns("system", "form_at", "assigned_at")},
               {_speed_columns("rep", "assigned_at", "touched_at")},
               {_speed_columns("total", "form_at", "touched_at")}
        FROM handoffs GROUP BY g ORDER BY g NULLS FIRST
        """
    )
    async with engine.connect() as conn:
        rows = await conn.execute(sql, params | {"since": cut.since, "until": cut.until})
        out = []
        for r in rows.mappings():
            row: dict[str, Any] = {
                "group": r["g"],
                "handoffs": r["handoffs"],
                "touched": r["touched"],
            }
            for part in ("system", "rep", "total"):
                measured = r[f"{part}_measured"]
                row[part] = {
                    "p50_s": _seconds(r[f"{part}_p50_s"]),
                    "p90_s": _seconds(r[f"{part}_p90_s"]),
                    "measured": measured,
                    **{f"within_{b // 60}m": r[f"{part}_within_{b // 60}m"] for b in SPEED_BANDS_S},
                    "beyond_60m": measured - r[f"{part}_within_60m"],
                }
            out.append(row)
        return out


# -- leakage ------------------------------------------------------------------------------------


async def leakage(
    engine: AsyncEngine, cut: Cut, *, unanswered_days: int, now: datetime, limit: int
) -> dict[str, Any]:
    """Where handed-off leads leak, each count with (up to ``limit`` of) its lead ids."""
    cuts, params = cut.where()
    params |= {"since": cut.since, "until": cut.until, "limit": limit}
    answered = ["sal", "sql", "opportunity", "won", "lost", "recycled", "disqualified"]
    queries = {
        # breached handoffs whose owner never touched the lead between assignment and breach
        "untouched_before_breach": f"""
            SELECT DISTINCT b.lead_id FROM {SCHEMA}.breaches b JOIN {_L} l ON l.lead_id = b.lead_id
            WHERE b.at >= :since AND b.at < :until{cuts} AND NOT EXISTS (
                SELECT 1 FROM {SCHEMA}.touches t WHERE t.lead_id = b.lead_id
                  AND t.origin = 'sales' AND t.actor_id = b.owner_id
                  AND t.at >= b.started_at AND t.at <= b.at)""",
        # MQLs old enough to judge that sales neither accepted nor rejected within the days
        "mql_unanswered": f"""
            SELECT DISTINCT s.lead_id FROM {_T} s JOIN {_L} l ON l.lead_id = s.lead_id
            WHERE s.to_stage = 'mql' AND s.at >= :since AND s.at < :until
              AND s.at <= :judged{cuts} AND NOT EXISTS (
                SELECT 1 FROM {_T} x WHERE x.lead_id = s.lead_id
                  AND x.to_stage = ANY(:answered) AND x.at >= s.at
                  AND x.at <= s.at + :days)
              AND NOT EXISTS (
                SELECT 1 FROM {SCHEMA}.feedback f WHERE f.lead_id = s.lead_id
                  AND f.at >= s.at AND f.at <= s.at + :days)""",
        "recycled": f"""
            SELECT DISTINCT s.lead_id FROM {_T} s JOIN {_L} l ON l.lead_id = s.lead_id
            WHERE s.to_stage = 'recycled' AND s.at >= :since AND s.at < :until{cuts}""",
        # leads that became MQLs again after an earlier cycle
        "requalified": f"""
            SELECT DISTINCT s.lead_id FROM {_T} s JOIN {_L} l ON l.lead_id = s.lead_id
            WHERE s.to_stage = 'mql' AND s.cycle > 1 AND s.at >= :since AND s.at < :until{cuts}""",
    }
    days = timedelta(days=unanswered_days)
    extra = {"judged": now - days, "days": days, "answered": answered}
    out: dict[str, Any] = {"unanswered_days": unanswered_days}
    async with engine.connect() as conn:
        for name, body in queries.items():
            statement = sa.text(
                f"WITH found AS ({body}) SELECT (SELECT count(*) FROM found) AS n, "
                "(SELECT array_agg(lead_id) FROM (SELECT lead_id FROM found ORDER BY lead_id "
                "LIMIT :limit) ids) AS ids"
            )
            if ":answered" in body:
                statement = statement.bindparams(sa.bindparam("answered", type_=pg.ARRAY(sa.Text)))
            row = (await conn.execute(statement, params | extra)).one()
            out[name] = {"count": row.n, "lead_ids": sorted(row.ids or [])}
        rejections = sa.text(
            f"""
            SELECT f.feedback, coalesce(f.reason_code, 'other') AS reason_code, l.source,
                   l.campaign, count(*) AS count, array_agg(DISTINCT f.lead_id) AS lead_ids
            FROM {SCHEMA}.feedback f JOIN {_L} l ON l.lead_id = f.lead_id
            WHERE f.feedback IN ('rejected', 'disqualified')
              AND f.at >= :since AND f.at < :until{cuts}
            GROUP BY 1, 2, 3, 4 ORDER BY count DESC, 1, 2, 3 NULLS FIRST, 4 NULLS FIRST
            """
        )
        out["rejections"] = [
            {**r, "lead_ids": sorted(r["lead_ids"])[:limit]}
            for r in (await conn.execute(rejections, params)).mappings()
        ]
    return out


# -- attribution and sourcing -------------------------------------------------------------------


async def credited(
    engine: AsyncEngine, cut: Cut, *, by: str, models: Sequence[str]
) -> list[dict[str, Any]]:
    """Per model, source or campaign, and currency: the pipeline (opportunities) and revenue
    (won deals) of the period credited to it, from the credits the writer keeps."""
    cuts, params = cut.where()
    join = f" JOIN {_L} l ON l.lead_id = c.lead_id" if cuts else ""
    sql = sa.text(
        f"""
        SELECT c.model, nullif(c.key, '') AS key, c.currency,
               coalesce(sum(c.amount_minor) FILTER (WHERE c.kind = 'pipeline'), 0) AS pipeline,
               coalesce(sum(c.amount_minor) FILTER (WHERE c.kind = 'revenue'), 0) AS revenue
        FROM {SCHEMA}.credits c{join}
        WHERE c.model = ANY(:models) AND c.by = :by AND c.at >= :since AND c.at < :until{cuts}
        GROUP BY 1, 2, 3
        """
    ).bindparams(sa.bindparam("models", type_=pg.ARRAY(sa.Text)))
    values = params | {"models": list(models), "by": by, "since": cut.since, "until": cut.until}
    async with engine.connect() as conn:
        rows = (await conn.execute(sql, values)).mappings().all()
    order = {m: i for i, m in enumerate(models)}
    return sorted(
        (dict(r) for r in rows), key=lambda r: (order[r["model"]], r["currency"], r["key"] or "")
    )


async def sourcing(engine: AsyncEngine, cut: Cut, *, by: By | None) -> list[dict[str, Any]]:
    """Pipeline and revenue per group, marketing-sourced (first seen through a form or a
    marketing event) against sales-sourced (first seen through sales activity or a sales
    system), per currency."""
    cuts, params = cut.where()
    sql = sa.text(
        f"""
        SELECT {_group(by, "f.at")} AS g, f.currency,
               CASE WHEN f.feedback = 'won' THEN 'revenue' ELSE 'pipeline' END AS kind,
               coalesce(l.origin, 'unknown') AS origin, sum(f.amount_minor) AS amount_minor,
               count(*) AS deals
        FROM {SCHEMA}.feedback f JOIN {_L} l ON l.lead_id = f.lead_id
        WHERE f.feedback IN ('converted', 'won') AND f.amount_minor IS NOT NULL
          AND f.at >= :since AND f.at < :until{cuts}
        GROUP BY 1, 2, 3, 4 ORDER BY 1 NULLS FIRST, 2, 3, 4
        """
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(sql, params | {"since": cut.since, "until": cut.until})).all()
    totals: dict[tuple[Any, ...], int] = {}
    for r in rows:
        totals[(r.g, r.currency, r.kind)] = (
            totals.get((r.g, r.currency, r.kind), 0) + r.amount_minor
        )
    return [
        {
            "group": r.g,
            "currency": r.currency,
            "kind": r.kind,
            "origin": r.origin,
            "deals": r.deals,
            "amount": str(domain.from_minor(r.amount_minor, r.currency)),
            "amount_minor": r.amount_minor,
            "share": domain.conversion(r.amount_minor, totals[(r.g, r.currency, r.kind)]),
        }
        for r in rows
    ]
