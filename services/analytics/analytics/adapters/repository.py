"""Writes the read model: facts inserted once per event id, lead rows upserted so that the
first touch, the latest assignment and the latest stage win whatever order events came in."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import driver, insert_rows, sql_type, unnest_insert
from leadrelay_shared.uow import SqlTransaction

from ..domain import Deal, Facts, Touch, credits
from . import orm

FIRST = ("first_at", "first_event", "origin", "source", "campaign")
OWNER = ("assigned_at", "assignment_event", "owner_id", "team_id", "territory", "segment")
STAGE = ("stage", "stage_at", "stage_order")


# a candidate wins where it is the lead's first touch, its latest assignment, its latest stage;
# ties break on the event id (or the stage's order), so the winner is the same in any order
_WINS = (
    (
        FIRST,
        "EXCLUDED.first_at IS NOT NULL AND (t.first_at IS NULL OR "
        "(EXCLUDED.first_at, EXCLUDED.first_event::text) < (t.first_at, t.first_event::text))",
    ),
    (
        OWNER,
        "EXCLUDED.assigned_at IS NOT NULL AND (t.assigned_at IS NULL OR "
        "(EXCLUDED.assigned_at, EXCLUDED.assignment_event::text) "
        "> (t.assigned_at, t.assignment_event::text))",
    ),
    (
        STAGE,
        "EXCLUDED.stage_at IS NOT NULL AND (t.stage_at IS NULL OR "
        "(EXCLUDED.stage_at, EXCLUDED.stage_order) > (t.stage_at, t.stage_order))",
    ),
)
LEAD = (*FIRST, *OWNER, *STAGE)
# A batch's lead rows in one statement, each row written once whatever the batch holds of it
# (a new row version, its indexes and the balances' trigger once, not once per kind of fact): a
# candidate carries null for what the batch does not say, and each part of a stored row changes
# only where its candidate wins.
_UPSERT_LEADS = unnest_insert(
    orm.leads,
    ("lead_id", *LEAD),
    "(lead_id) DO UPDATE SET "
    + ", ".join(
        f"{c} = CASE WHEN {wins} THEN EXCLUDED.{c} ELSE t.{c} END"
        for columns, wins in _WINS
        for c in columns
    )
    + " WHERE "
    + " OR ".join(f"({wins})" for _, wins in _WINS),
    # a row inserted now has an xmax of 0: its lead had no facts before this batch
    returning="lead_id, first_event, assignment_event, xmax = 0",
)


@functools.cache
def _insert(table: str, columns: tuple[str, ...]) -> str:
    return unnest_insert(orm.metadata.tables[f"{orm.SCHEMA}.{table}"], columns, returning="lead_id")


_S, _LEADS = f"{orm.SCHEMA}.stage_changes", f"{orm.SCHEMA}.leads"
# A stored stage change's next forward entry: the earliest later-ranked entry of its lead from
# its time on ({c} is the stage change)
_NEXT = (
    f"(SELECT min(x.at) FROM {_S} x WHERE x.lead_id = {{c}}.lead_id AND x.at >= {{c}}.at "
    f"AND x.funnel_rank > {{c}}.funnel_rank)"
)


@functools.cache
def _insert_stage_changes(columns: tuple[str, ...]) -> str:
    """New stage changes written as the refresh below would leave them: with their lead's
    dimensions (its row is written first) and the earlier of the batch's next entry and the
    stored one, so that a stage change is written once, not inserted and then updated."""
    arrays = ", ".join(
        f"${i}::{sql_type(orm.stage_changes.c[name])}[]" for i, name in enumerate(columns, 1)
    )
    values = [
        f"least(u.next_at, {_NEXT.format(c='u')})" if name == "next_at" else f"u.{name}"
        for name in columns
    ]
    return (
        f"INSERT INTO {_S} AS t ({', '.join(columns)}, {', '.join(orm.DIMENSIONS)}) "
        f"SELECT {', '.join(values)}, {', '.join(f'l.{d}' for d in orm.DIMENSIONS)} "
        f"FROM unnest({arrays}) AS u({', '.join(columns)}) "
        f"LEFT JOIN {_LEADS} l ON l.lead_id = u.lead_id "
        f"AND l.lead_id = ANY(${columns.index('lead_id') + 1}) "
        "ON CONFLICT DO NOTHING RETURNING t.lead_id, t.event_id"
    )


# A stage change's next forward entry and its lead's dimensions, recomputed for the leads of a
# batch from all their rows: a function of the set of facts, so the order they came in and a
# redelivery change nothing. The batch's own stage changes were written right, and rows already
# right are left alone.
_REFRESH_STAGES = sa.text(
    f"""
    UPDATE {_S} s SET next_at = n.next_at, source = n.source, campaign = n.campaign,
        segment = n.segment, territory = n.territory, team_id = n.team_id, owner_id = n.owner_id
    FROM (
        SELECT c.event_id, l.source, l.campaign, l.segment, l.territory, l.team_id, l.owner_id,
               {_NEXT.format(c="c")} AS next_at
        FROM {_S} c
        LEFT JOIN {_LEADS} l ON l.lead_id = c.lead_id AND l.lead_id = ANY(:leads)
        WHERE c.lead_id = ANY(:leads) AND c.event_id <> ALL(:written)
    ) n
    WHERE s.event_id = n.event_id AND (s.next_at, s.source, s.campaign, s.segment, s.territory,
        s.team_id, s.owner_id) IS DISTINCT FROM (n.next_at, n.source, n.campaign, n.segment,
        n.territory, n.team_id, n.owner_id)
    """
).bindparams(
    sa.bindparam("leads", type_=pg.ARRAY(sa.Text)),
    sa.bindparam("written", type_=pg.ARRAY(pg.UUID(as_uuid=True))),
)


# A lead's deals (opportunities with an amount, won deals) with its latest MQL entry and
# opportunity creation before each, and its marketing touches: what its credits are made of.
_DEALS = f"""
    SELECT f.event_id, f.lead_id, f.at, f.feedback, f.amount_minor, f.currency,
           (SELECT max(s.at) FROM {_S} s WHERE s.lead_id = f.lead_id
              AND s.to_stage = 'mql' AND s.at <= f.at) AS mql_at,
           (SELECT max(s.at) FROM {_S} s WHERE s.lead_id = f.lead_id
              AND s.to_stage = 'opportunity' AND s.at <= f.at) AS opened_at
    FROM {orm.SCHEMA}.feedback f
    WHERE f.lead_id = ANY($1::text[]) AND f.feedback IN ('converted', 'won')
      AND f.amount_minor IS NOT NULL
    ORDER BY f.at, f.event_id
"""
_TOUCHES = f"""
    SELECT lead_id, at, source, campaign, kind FROM {orm.SCHEMA}.touches
    WHERE lead_id = ANY($1::text[]) AND origin = 'marketing' ORDER BY lead_id, at, event_id
"""
_CREDIT_COLUMNS = tuple(c.name for c in orm.credits.columns)
_INSERT_CREDITS = unnest_insert(orm.credits, _CREDIT_COLUMNS)
_DROP_CREDITS = f"DELETE FROM {orm.SCHEMA}.credits WHERE lead_id = ANY($1::text[])"


# A batch's statements look up a few hundred leads in tables of many: the read model sits in
# memory, so index lookups cost little more than reading pages in order, and on tables not yet
# analysed the planner can guess a statement large enough to compile it (JIT), which takes longer
# than running it. For the writer's transactions only: reports are planned as PostgreSQL likes.
_WRITER_SETTINGS = sa.text(
    "SELECT set_config('random_page_cost', '1.1', true), set_config('jit', 'off', true)"
)


class AnalyticsUnitOfWork(SqlTransaction):
    """One transaction over the read model."""

    async def add(self, facts: Facts) -> None:
        """The lead rows, then each fact once (a redelivered event is already there); leads are
        written in id order, so two writers never deadlock."""
        await self.conn.execute(_WRITER_SETTINGS)
        # the leads whose stored stage changes may now be wrong: a row whose first touch or owner
        # changed (a touch that is not the lead's first changes nothing), or a new stage change,
        # unless the lead is new (its stage changes are all this batch's, written right); and
        # those whose credits may: a new touch, stage change or deal
        changed: set[str] = set()
        created: set[str] = set()
        credited: set[str] = set()
        written: list[Any] = []  # the stage changes this batch wrote
        leads = sorted(facts.firsts.keys() | facts.owners.keys() | facts.stages.keys())
        if leads:
            parts = ((facts.firsts, FIRST), (facts.owners, OWNER), (facts.stages, STAGE))
            rows = [
                {"lead_id": lead}
                | {c: part.get(lead, {}).get(c) for part, columns in parts for c in columns}
                for lead in leads
            ]
            for lead, first, assignment, new in await insert_rows(
                self.conn, _UPSERT_LEADS, ("lead_id", *LEAD), rows
            ):
                if new:
                    created.add(lead)
                # the first touch or the owner won: the lead's stage changes' dimensions may
                # change (a new stage alone changes none of them)
                elif (lead in facts.firsts and facts.firsts[lead]["first_event"] == first) or (
                    lead in facts.owners and facts.owners[lead]["assignment_event"] == assignment
                ):
                    changed.add(lead)
        for name, rows in facts.tables().items():
            if rows:
                keys = tuple(rows[0])
                insert = (
                    _insert_stage_changes(keys) if name == "stage_changes" else _insert(name, keys)
                )
                added = await insert_rows(self.conn, insert, keys, rows)
                if name == "stage_changes":
                    changed.update(r[0] for r in added)
                    written = [r[1] for r in added]
                if name in ("touches", "stage_changes", "feedback"):
                    credited.update(r[0] for r in added)
        changed -= created
        if changed:
            await self.conn.execute(_REFRESH_STAGES, {"leads": sorted(changed), "written": written})
        if credited:
            await self.credit(sorted(credited))

    async def credit(self, leads: list[str]) -> None:
        """Credit the deals of ``leads`` again from all their facts: a function of the facts,
        whatever order they came in."""
        raw = await driver(self.conn)
        deals, touches = await deals_of(raw, leads)
        if not deals:  # facts are only added: a lead with no deal has no credits to replace
            return
        await raw.execute(_DROP_CREDITS, sorted({d.lead_id for d in deals}))
        # the key is part of the table's key: a touch that names no source or campaign is ''
        rows = [r | {"key": r["key"] or ""} for r in credits(deals, touches)]
        await insert_rows(self.conn, _INSERT_CREDITS, _CREDIT_COLUMNS, rows)

    async def reset(self) -> None:
        """Empty the read model (a rebuild replays the topics into it)."""
        # a TRUNCATE fires no trigger: the tables PostgreSQL keeps go with the facts
        derived = (orm.credits, orm.stage_days, orm.stage_months, orm.stage_balances)
        names = ", ".join(f"{t.schema}.{t.name}" for t in (orm.leads, *orm.FACTS, *derived))
        await self.conn.execute(sa.text(f"TRUNCATE {names}"))


async def deals_of(raw: Any, leads: list[str]) -> tuple[list[Deal], dict[str, list[Touch]]]:
    """The deals of ``leads`` and their marketing touches, oldest first, read on the asyncpg
    connection ``raw``."""
    deals = [
        Deal(
            lead_id=r["lead_id"],
            at=r["at"],
            kind="revenue" if r["feedback"] == "won" else "pipeline",
            amount_minor=r["amount_minor"],
            currency=r["currency"],
            mql_at=r["mql_at"],
            opened_at=r["opened_at"],
            event_id=r["event_id"],
        )
        for r in await raw.fetch(_DEALS, leads)
    ]
    touches: dict[str, list[Touch]] = {}
    if deals:
        for lead_id, at, source, campaign, kind in await raw.fetch(
            _TOUCHES, sorted({d.lead_id for d in deals})
        ):
            touches.setdefault(lead_id, []).append(Touch(at, source, campaign, kind))
    return deals, touches
