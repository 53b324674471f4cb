"""Repositories over one connection; they read and write, they never commit.

A batch of events is one ``SELECT ... FOR UPDATE`` of its leads (in lead-id order, so two
writers never deadlock) and one multi-row statement per table to write back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared import jsonio
from leadrelay_shared.contracts import LeadSnapshot, Stage
from leadrelay_shared.db import any_of, copy_rows
from leadrelay_shared.privacy import scrub
from leadrelay_shared.uow import SqlUnitOfWork

from ..domain import Hit, LeadProfile, Part, fit_lines_data
from ..handlers import StageRecord, TimelineEntry
from . import orm

_tuple_new = tuple.__new__  # builds a NamedTuple without its keyword-handling ``__new__``
SAVED = ("snapshot", "snapshot_at", "stage", "stage_entered_at", "fit_score", "fit_grade",
         "engagement_score", "hits", "engagement_since", "cycle", "erased_at", "model_version",
         "form_fills", "fit_parts", "updated_at")


def hits_to_json(hits: tuple[Hit, ...]) -> list[list[Any]]:
    return [list(h) for h in hits]


def hits_from_json(rows: list[list[Any]]) -> tuple[Hit, ...]:
    # tuple.__new__ rather than Hit(...): the NamedTuple's keyword-handling constructor was
    # about two thirds of loading a profile's hits
    return tuple(sorted([_tuple_new(Hit, (float(ts), e, r, p)) for ts, e, r, p in rows]))


def parts_to_json(parts: tuple[Part, ...]) -> list[list[Any]]:
    return [[x["rule_id"], x["points"], x["message"], x["event_id"]]
            for x in fit_lines_data(parts)]


def parts_from_json(rows: list[list[Any]]) -> tuple[Part, ...]:
    return tuple([Part(r, p, m, e) for r, p, m, e in rows])


def profile_from_row(row: Row[Any]) -> LeadProfile:
    return LeadProfile(
        lead_id=row.lead_id, snapshot=LeadSnapshot.model_validate(row.snapshot),
        snapshot_at=row.snapshot_at, stage=Stage(row.stage) if row.stage else None,
        stage_entered_at=row.stage_entered_at, fit_score=row.fit_score, fit_grade=row.fit_grade,
        engagement_score=row.engagement_score, hits=hits_from_json(row.hits),
        engagement_since=row.engagement_since, cycle=row.cycle, erased_at=row.erased_at,
        form_fills=row.form_fills, fit_parts=parts_from_json(row.fit_parts),
        fit_version=row.model_version)


class LeadRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        # lead id → the snapshot loaded and the JSON it was loaded from: saving a profile
        # whose snapshot the batch did not change writes that JSON again instead of dumping it
        self._loaded: dict[str, tuple[LeadSnapshot, Any]] = {}

    async def get_many_for_update(self, lead_ids: Collection[str]) -> dict[str, LeadProfile]:
        t = orm.leads
        rows = await self._conn.execute(
            sa.select(t).where(any_of(t.c.lead_id, sorted(lead_ids)))
            .order_by(t.c.lead_id).with_for_update())
        profiles = {}
        for row in rows:
            profile = profiles[row.lead_id] = profile_from_row(row)
            self._loaded[row.lead_id] = (profile.snapshot, row.snapshot)
        return profiles

    async def save_many(self, profiles: Sequence[LeadProfile], *, model_version: str,
                        now: datetime) -> None:
        rows = [self._values(p, model_version, now) for p in profiles]
        stmt = insert(orm.leads)
        stmt = stmt.on_conflict_do_update(
            index_elements=["lead_id"], set_={c: stmt.excluded[c] for c in SAVED})
        await self._conn.execute(stmt, rows)

    def _values(self, p: LeadProfile, model_version: str, now: datetime) -> dict[str, Any]:
        loaded = self._loaded.get(p.lead_id)
        snapshot = loaded[1] if loaded is not None and loaded[0] is p.snapshot else \
            p.snapshot.model_dump(mode="json")
        return {
            "lead_id": p.lead_id, "snapshot": snapshot,
            "snapshot_at": p.snapshot_at, "stage": p.stage.value if p.stage else None,
            "stage_entered_at": p.stage_entered_at, "fit_score": p.fit_score,
            "fit_grade": p.fit_grade, "engagement_score": p.engagement_score,
            "hits": hits_to_json(p.hits), "engagement_since": p.engagement_since,
            "cycle": p.cycle, "erased_at": p.erased_at, "model_version": model_version,
            "form_fills": p.form_fills, "fit_parts": parts_to_json(p.fit_parts),
            "created_at": now, "updated_at": now,
        }

    async def due_for_timers(self, due: dict[Stage, float], now: datetime,
                             limit: int) -> list[LeadProfile]:
        if not due:
            return []
        t = orm.leads
        when = sa.or_(*(sa.and_(t.c.stage == stage.value,
                                t.c.stage_entered_at <= now - timedelta(seconds=after))
                        for stage, after in due.items()))
        rows = await self._conn.execute(
            sa.select(t).where(when).order_by(t.c.stage_entered_at).limit(limit)
            .with_for_update(skip_locked=True))
        return [profile_from_row(row) for row in rows]


class TimelineRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_many(self, entries: Sequence[TimelineEntry]) -> None:
        """Append entries (COPY: two or three per event, the most rows scoring writes)."""
        if entries:
            await copy_rows(self._conn, orm.timeline,
                            ("lead_id", "at", "kind", "summary", "detail", "event_id"),
                            [(e.lead_id, e.at, e.kind, e.summary,
                              e.detail_json if e.detail_json is not None
                              else jsonio.dumps_str(e.detail), e.event_id) for e in entries])

    async def scrub(self, lead_id: str) -> None:
        t = orm.timeline
        rows = (await self._conn.execute(
            sa.select(t.c.id, t.c.detail).where(t.c.lead_id == lead_id))).all()
        for row in rows:
            cleaned = scrub(row.detail)
            if cleaned != row.detail:
                await self._conn.execute(sa.update(t).where(t.c.id == row.id)
                                         .values(detail=cleaned))


class HistoryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_many(self, records: Sequence[StageRecord]) -> None:
        await self._conn.execute(sa.insert(orm.stage_history), [
            {"lead_id": r.lead_id, "cycle": r.cycle,
             "from_stage": r.from_stage.value if r.from_stage else None,
             "to_stage": r.to_stage.value, "actor": r.actor, "reasons": r.reasons, "at": r.at,
             "model_version": r.model_version, "cause_event_id": r.cause_event_id}
            for r in records])


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
