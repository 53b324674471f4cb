"""Read models for router's API."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.contracts import LeadSnapshot, Stage
from leadrelay_shared.db import driver

from .adapters import orm
from .adapters.repository import RepLoads
from .config import RoutingConfig, Team
from .domain import local_day, rep_state
from .simulation import Routed, Simulation, Start, simulate


async def assignment(engine: AsyncEngine, assignment_id: uuid.UUID) -> dict[str, Any] | None:
    t = orm.assignments
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(t).where(t.c.id == assignment_id))).mappings().first()
    return dict(row) if row else None


async def rep_states(
    engine: AsyncEngine, config: RoutingConfig, now: datetime
) -> list[dict[str, Any]]:
    """Every rep of ``config`` with their state at ``now`` and the teams they are in."""
    async with engine.connect() as conn:
        loads = await RepLoads(conn).recent(config.reps, now)
    teams: dict[str, list[Team]] = {}
    for team in config.teams.values():
        for member in team.members:
            teams.setdefault(member, []).append(team)
    return [
        rep_state(rep, now, loads, hours=any(t.respect_hours for t in teams.get(rep.id, [])))
        | {"teams": [t.id for t in teams.get(rep.id, [])]}
        for rep in config.reps.values()
    ]


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


# -- what-if: the history a simulation replays ----------------------------------------------------

_T = f"{orm.SCHEMA}.{orm.assignments.name}"
# The window's rows are read through asyncpg directly, the lead as JSON text: each is then
# parsed and validated in one pass, where SQLAlchemy's row processing would decode it to a
# dict first (the read is most of a large simulation's time after the decisions).
_HISTORY = f"""
    SELECT id, lead_id, created_at, kind, stage, lead::text AS lead, owner_id, queue, team_id,
           strategy, config_version, decision->>'territory' AS territory,
           (decision->>'pointer_before')::int AS pointer_before,
           ARRAY(SELECT s->>'rep_id' FROM jsonb_array_elements(decision->'skipped') s
                 WHERE s->>'rule_id' IN ('rep.capacity_day', 'rep.capacity_week'))
               AS capacity_skipped
    FROM {_T} WHERE created_at >= $1 AND created_at < $2
    ORDER BY created_at, seq
    """
# a pool the window did not use starts where its last decision before the window left it
_LAST_POINTER = sa.text(
    f"""
    SELECT (decision->>'pointer_after')::int FROM {_T}
    WHERE created_at < :since AND team_id = :team AND decision->>'pointer_after' IS NOT NULL
      AND strategy NOT IN ('account_owner', 'none')
    ORDER BY created_at DESC, seq DESC LIMIT 1
    """
)
_LOADS_BEFORE = sa.text(
    f"""
    SELECT owner_id, created_at FROM {_T}
    WHERE created_at >= CAST(:since AS timestamptz) - interval '8 days' AND created_at < :since
      AND owner_id IS NOT NULL
    """
)
_OWNERS_BEFORE = sa.text(
    f"""
    SELECT DISTINCT ON (lead_id) lead_id, owner_id FROM {_T}
    WHERE lead_id = ANY(:ids) AND created_at < :since
    ORDER BY lead_id, created_at DESC, seq DESC
    """
)


async def replay_input(
    engine: AsyncEngine, since: datetime, until: datetime, candidate: RoutingConfig
) -> tuple[list[Routed], Start, set[str]]:
    """The assignments made in ``[since, until)`` in the order they were made, the routing state
    when the window opened (pointers; the loads of the days before, in the candidate's time
    zones; the owners of re-routed leads) and the configuration versions they were made under."""
    async with engine.connect() as conn:
        rows = await (await driver(conn)).fetch(_HISTORY, since, until)
        # each pool's pointer when the window opened: what its first decision in it read
        pointers: dict[str, int] = {}
        for r in rows:
            if r["pointer_before"] is not None:
                pointers.setdefault(r["team_id"], r["pointer_before"])
        for team_id in sorted(set(candidate.teams) - set(pointers)):
            found = await conn.scalar(_LAST_POINTER, {"since": since, "team": team_id})
            if found is not None:
                pointers[team_id] = found
        loads: dict[str, dict[date, int]] = {}
        for owner_id, at in await conn.execute(_LOADS_BEFORE, {"since": since}):
            rep = candidate.reps.get(owner_id)
            if rep is not None:
                day = local_day(rep, at)
                per_day = loads.setdefault(rep.id, {})
                per_day[day] = per_day.get(day, 0) + 1
        rerouted = sorted({r["lead_id"] for r in rows if r["kind"] == "reroute"})
        owners: dict[str, str | None] = (
            dict((await conn.execute(_OWNERS_BEFORE, {"ids": rerouted, "since": since})).all())
            if rerouted
            else {}
        )
    history = [
        Routed(
            assignment_id=r["id"],
            lead_id=r["lead_id"],
            at=r["created_at"],
            kind=r["kind"],
            stage=Stage(r["stage"]),
            lead=LeadSnapshot.model_validate_json(r["lead"] or "{}"),
            owner_id=r["owner_id"],
            queue=r["queue"],
            team_id=None if r["team_id"] == "(none)" else r["team_id"],
            territory=r["territory"],
            strategy=r["strategy"],
            capacity_skipped=tuple(r["capacity_skipped"]),
        )
        for r in rows
    ]
    return history, Start(pointers, loads, owners), {r["config_version"] for r in rows}


async def what_if(
    engine: AsyncEngine, candidate: RoutingConfig, since: datetime, until: datetime
) -> Simulation:
    """The leads routed in ``[since, until)`` replayed under ``candidate``; the replay runs in
    a thread, so the service goes on routing while it does."""
    history, start, versions = await replay_input(engine, since, until, candidate)
    return await asyncio.to_thread(
        simulate, history, start, candidate, window=(since, until), versions_before=versions
    )
