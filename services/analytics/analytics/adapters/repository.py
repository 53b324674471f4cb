"""Writes the read model: facts inserted once per event id, lead rows upserted so that the
first touch, the latest assignment and the latest stage win whatever order events came in."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.uow import SqlTransaction

from ..domain import Facts
from . import orm

_L = orm.leads


def _upsert(
    rows: list[dict[str, Any]], columns: tuple[str, ...], wins: sa.ColumnElement[bool]
) -> tuple[sa.Insert, list[dict[str, Any]]]:
    """An upsert of ``columns`` that changes a lead's row only where ``wins``, and its rows."""
    insert = pg.insert(_L)
    return insert.on_conflict_do_update(
        index_elements=[_L.c.lead_id],
        set_={c: insert.excluded[c] for c in columns},
        where=wins,
    ), [{k: r[k] for k in ("lead_id", *columns)} for r in rows]


def _first_wins() -> sa.ColumnElement[bool]:
    x = pg.insert(_L).excluded
    return sa.or_(
        _L.c.first_at.is_(None),
        sa.tuple_(x.first_at, sa.cast(x.first_event, sa.Text))
        < sa.tuple_(_L.c.first_at, sa.cast(_L.c.first_event, sa.Text)),
    )


def _latest_wins(at: str, key: str, key_text: bool) -> sa.ColumnElement[bool]:
    x = pg.insert(_L).excluded

    def k(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.cast(col, sa.Text) if key_text else col

    return sa.or_(
        _L.c[at].is_(None),
        sa.tuple_(x[at], k(x[key])) > sa.tuple_(_L.c[at], k(_L.c[key])),
    )


FIRST = ("first_at", "first_event", "origin", "source", "campaign")
OWNER = ("assigned_at", "assignment_event", "owner_id", "team_id", "territory", "segment")
STAGE = ("stage", "stage_at", "stage_order")


_S, _LEADS = f"{orm.SCHEMA}.stage_changes", f"{orm.SCHEMA}.leads"
# A stage change's next forward entry and its lead's dimensions, recomputed for the leads of a
# batch from all their rows: a function of the set of facts, so the order they came in and a
# redelivery change nothing. Rows already right are left alone.
_REFRESH_STAGES = sa.text(
    f"""
    UPDATE {_S} s SET next_at = n.next_at, source = n.source, campaign = n.campaign,
        segment = n.segment, territory = n.territory, team_id = n.team_id, owner_id = n.owner_id
    FROM (
        SELECT c.event_id, l.source, l.campaign, l.segment, l.territory, l.team_id, l.owner_id,
               (SELECT min(x.at) FROM {_S} x WHERE x.lead_id = c.lead_id AND x.at >= c.at
                  AND x.funnel_rank > c.funnel_rank) AS next_at
        FROM {_S} c LEFT JOIN {_LEADS} l ON l.lead_id = c.lead_id
        WHERE c.lead_id = ANY(:leads)
    ) n
    WHERE s.event_id = n.event_id AND (s.next_at, s.source, s.campaign, s.segment, s.territory,
        s.team_id, s.owner_id) IS DISTINCT FROM (n.next_at, n.source, n.campaign, n.segment,
        n.territory, n.team_id, n.owner_id)
    """
).bindparams(sa.bindparam("leads", type_=pg.ARRAY(sa.Text)))


class AnalyticsUnitOfWork(SqlTransaction):
    """One transaction over the read model."""

    async def add(self, facts: Facts) -> None:
        """Each fact once (a redelivered event is already there), then the lead rows; leads are
        written in id order, so two writers never deadlock."""
        for name, rows in facts.tables().items():
            if rows:
                table = orm.metadata.tables[f"{orm.SCHEMA}.{name}"]
                await self.conn.execute(pg.insert(table).on_conflict_do_nothing(), rows)
        for candidates, columns, wins in (
            (facts.firsts, FIRST, _first_wins()),
            (facts.owners, OWNER, _latest_wins("assigned_at", "assignment_event", True)),
            (facts.stages, STAGE, _latest_wins("stage_at", "stage_order", False)),
        ):
            if candidates:
                rows = [candidates[k] for k in sorted(candidates)]
                statement, params = _upsert(rows, columns, wins)
                await self.conn.execute(statement, params)

        leads = sorted(
            {r["lead_id"] for r in facts.stage_changes} | set(facts.firsts) | set(facts.owners)
        )
        if leads:
            await self.conn.execute(_REFRESH_STAGES, {"leads": leads})

    async def reset(self) -> None:
        """Empty the read model (a rebuild replays the topics into it)."""
        names = ", ".join(f"{t.schema}.{t.name}" for t in (orm.leads, *orm.FACTS))
        await self.conn.execute(sa.text(f"TRUNCATE {names}"))
