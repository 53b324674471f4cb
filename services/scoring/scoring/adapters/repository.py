"""Repositories over one connection; they read and write, they never commit.

A batch of events is one ``SELECT ... FOR UPDATE`` of its leads (in lead-id order, so two
writers never deadlock) and one multi-row statement per table to write back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared import jsonio
from leadrelay_shared.contracts import LeadSnapshot, Stage
from leadrelay_shared.db import copy_rows, driver, sql_type
from leadrelay_shared.privacy import scrub
from leadrelay_shared.uow import SqlUnitOfWork

from ..domain import Hit, LeadProfile, Part
from ..timeline import StageRecord, TimelineEntry
from . import orm

SAVED = (
    "snapshot",
    "snapshot_at",
    "stage",
    "stage_entered_at",
    "fit_score",
    "fit_grade",
    "engagement_score",
    "hits",
    "engagement_since",
    "cycle",
    "erased_at",
    "model_version",
    "form_fills",
    "fit_parts",
    "updated_at",
)


def hits_json(hits: tuple[Hit, ...]) -> str:
    """The hits as stored: a JSON array of ``[ts, event_id, rule_id, points]``."""
    # as plain tuples: pydantic-core writes a NamedTuple the same, but several times slower
    return jsonio.dumps_str([tuple(h) for h in hits])


def hits_from_json(rows: list[list[Any]]) -> tuple[Hit, ...]:
    return tuple(sorted([Hit(float(ts), e, r, p) for ts, e, r, p in rows]))


def parts_json(parts: tuple[Part, ...]) -> str:
    """The fit lines as stored: a JSON array of ``[rule_id, points, message, event_id]`` (a
    part is a tuple of those, written as an array)."""
    return jsonio.dumps_str([tuple(p) for p in parts])  # plain tuples, as in hits_json


def parts_from_json(rows: list[list[Any]]) -> tuple[Part, ...]:
    return tuple([Part(r, p, m, e) for r, p, m, e in rows])


def profile_from_row(row: Mapping[Any, Any]) -> LeadProfile:
    """A stored profile; its ``snapshot`` as JSON text (the repository reads it so, to save it
    again unchanged) or already parsed."""
    snapshot = row["snapshot"]
    return LeadProfile(
        lead_id=row["lead_id"],
        snapshot=LeadSnapshot.model_validate_json(snapshot)
        if isinstance(snapshot, str)
        else LeadSnapshot.model_validate(snapshot),
        snapshot_at=row["snapshot_at"],
        stage=Stage(row["stage"]) if row["stage"] else None,
        stage_entered_at=row["stage_entered_at"],
        fit_score=row["fit_score"],
        fit_grade=row["fit_grade"],
        engagement_score=row["engagement_score"],
        hits=hits_from_json(row["hits"]),
        engagement_since=row["engagement_since"],
        cycle=row["cycle"],
        erased_at=row["erased_at"],
        form_fills=row["form_fills"],
        fit_parts=parts_from_json(row["fit_parts"]),
        fit_version=row["model_version"],
    )


# The profiles are read and written through asyncpg directly, on the unit of work's connection
# and in its transaction: through SQLAlchemy, per-row and per-column parameter processing (and
# its JSON serialiser called column by column) cost more of the consumer's CPU than building
# the rows. The statements are written once, here, from the table's definition.
_LEADS = f"{orm.SCHEMA}.{orm.leads.name}"
# the columns save_many writes, in the order of the rows it builds; created_at and updated_at
# are the batch's ``now`` and come last, one parameter for both
WRITTEN = ("lead_id", *SAVED[:-1])
_UPSERT = (
    f"INSERT INTO {_LEADS} ({', '.join(WRITTEN)}, created_at, updated_at) "
    f"SELECT u.*, ${len(WRITTEN) + 1}::timestamptz, ${len(WRITTEN) + 1}::timestamptz FROM unnest("
    + ", ".join(f"${i}::{sql_type(orm.leads.c[c])}[]" for i, c in enumerate(WRITTEN, 1))
    + ") AS u ON CONFLICT (lead_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in SAVED)
)
_READ = (
    "lead_id",
    "snapshot::text AS snapshot",
    "snapshot_at",
    "stage",
    "stage_entered_at",
    "fit_score",
    "fit_grade",
    "engagement_score",
    "hits",
    "engagement_since",
    "cycle",
    "erased_at",
    "form_fills",
    "fit_parts",
    "model_version",
)
_SELECT = f"SELECT {', '.join(_READ)} FROM {_LEADS}"
_FOR_UPDATE = f"{_SELECT} WHERE lead_id = ANY($1::text[]) ORDER BY lead_id FOR UPDATE"


class LeadRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        # lead id → the snapshot loaded and the JSON it was loaded from: saving a profile
        # whose snapshot the batch did not change writes that JSON again instead of dumping it
        self._loaded: dict[str, tuple[LeadSnapshot, str]] = {}

    async def get_many_for_update(self, lead_ids: Collection[str]) -> dict[str, LeadProfile]:
        rows = await (await driver(self._conn)).fetch(_FOR_UPDATE, sorted(lead_ids))
        return {row["lead_id"]: self._profile(row) for row in rows}

    def _profile(self, row: Mapping[str, Any]) -> LeadProfile:
        profile = profile_from_row(row)
        self._loaded[profile.lead_id] = (profile.snapshot, row["snapshot"])
        return profile

    async def save_many(
        self, profiles: Sequence[LeadProfile], *, model_version: str, now: datetime
    ) -> None:
        if not profiles:
            return
        columns = list(zip(*[self._values(p, model_version) for p in profiles], strict=True))
        await (await driver(self._conn)).execute(_UPSERT, *columns, now)

    def _values(self, p: LeadProfile, model_version: str) -> tuple[Any, ...]:
        """One row in ``WRITTEN``'s order, JSON columns as JSON text."""
        loaded = self._loaded.get(p.lead_id)
        snapshot = (
            loaded[1]
            if loaded is not None and loaded[0] is p.snapshot
            else p.snapshot.model_dump_json()
        )
        return (
            p.lead_id,
            snapshot,
            p.snapshot_at,
            p.stage.value if p.stage else None,
            p.stage_entered_at,
            p.fit_score,
            p.fit_grade,
            p.engagement_score,
            hits_json(p.hits),
            p.engagement_since,
            p.cycle,
            p.erased_at,
            model_version,
            p.form_fills,
            parts_json(p.fit_parts),
        )

    async def due_for_timers(
        self, due: dict[Stage, float], now: datetime, limit: int
    ) -> list[LeadProfile]:
        if not due:
            return []
        params: list[Any] = []
        when = []
        for stage, after in due.items():
            params += [stage.value, now - timedelta(seconds=after)]
            when.append(f"(stage = ${len(params) - 1} AND stage_entered_at <= ${len(params)})")
        params.append(limit)
        rows = await (await driver(self._conn)).fetch(
            f"{_SELECT} WHERE {' OR '.join(when)} ORDER BY stage_entered_at "
            f"LIMIT ${len(params)} FOR UPDATE SKIP LOCKED",
            *params,
        )
        return [self._profile(row) for row in rows]


class TimelineRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_many(self, entries: Sequence[TimelineEntry]) -> None:
        """Append entries (COPY: two or three per event, the most rows scoring writes)."""
        if entries:
            await copy_rows(
                self._conn,
                orm.timeline,
                ("lead_id", "at", "kind", "summary", "detail", "event_id"),
                [
                    (
                        e.lead_id,
                        e.at,
                        e.kind,
                        e.summary,
                        e.detail_json if e.detail_json is not None else jsonio.dumps_str(e.detail),
                        e.event_id,
                    )
                    for e in entries
                ],
            )

    async def scrub(self, lead_id: str) -> None:
        t = orm.timeline
        rows = (
            await self._conn.execute(sa.select(t.c.id, t.c.detail).where(t.c.lead_id == lead_id))
        ).all()
        for row in rows:
            cleaned = scrub(row.detail)
            if cleaned != row.detail:
                await self._conn.execute(
                    sa.update(t).where(t.c.id == row.id).values(detail=cleaned)
                )


class HistoryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_many(self, records: Sequence[StageRecord]) -> None:
        await self._conn.execute(
            sa.insert(orm.stage_history),
            [
                {
                    "lead_id": r.lead_id,
                    "cycle": r.cycle,
                    "from_stage": r.from_stage.value if r.from_stage else None,
                    "to_stage": r.to_stage.value,
                    "actor": r.actor,
                    "reasons": r.reasons,
                    "at": r.at,
                    "model_version": r.model_version,
                    "cause_event_id": r.cause_event_id,
                }
                for r in records
            ],
        )


class ScoringUnitOfWork(SqlUnitOfWork):
    leads: LeadRepository
    timeline: TimelineRepository
    history: HistoryRepository

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, orm.common)

    def _open(self, conn: AsyncConnection) -> None:
        self.leads = LeadRepository(conn)
        self.timeline = TimelineRepository(conn)
        self.history = HistoryRepository(conn)
