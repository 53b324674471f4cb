"""Repositories over one connection; they read and write, they never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared.contracts import LeadSnapshot, Stage
from leadrelay_shared.uow import SqlUnitOfWork

from ..domain import LeadProfile
from . import orm


class LeadRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_for_update(self, lead_id: str) -> LeadProfile | None:
        t = orm.leads
        row = (await self._conn.execute(
            sa.select(t).where(t.c.lead_id == lead_id).with_for_update())).first()
        if row is None:
            return None
        return LeadProfile(
            lead_id=row.lead_id, snapshot=LeadSnapshot.model_validate(row.snapshot),
            stage=Stage(row.stage) if row.stage else None, fit_score=row.fit_score,
            engagement_score=row.engagement_score, form_fills=row.form_fills,
            stage_entered_at=row.stage_entered_at)

    async def save(self, profile: LeadProfile, *, model_version: str, now: datetime) -> None:
        values: dict[str, Any] = dict(
            snapshot=profile.snapshot.model_dump(mode="json"),
            stage=profile.stage.value if profile.stage else None,
            stage_entered_at=profile.stage_entered_at, fit_score=profile.fit_score,
            engagement_score=profile.engagement_score, form_fills=profile.form_fills,
            model_version=model_version, updated_at=now)
        stmt = insert(orm.leads).values(lead_id=profile.lead_id, created_at=now, **values)
        await self._conn.execute(stmt.on_conflict_do_update(index_elements=["lead_id"], set_=values))


class TimelineRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, lead_id: str, *, at: datetime, kind: str, summary: str,
                  detail: dict[str, Any], event_id: uuid.UUID | None) -> None:
        await self._conn.execute(sa.insert(orm.timeline).values(
            lead_id=lead_id, at=at, kind=kind, summary=summary, detail=detail, event_id=event_id))


class ScoringUnitOfWork(SqlUnitOfWork):
    leads: LeadRepository
    timeline: TimelineRepository

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, orm.common)

    def _open(self, conn: AsyncConnection) -> None:
        self.leads = LeadRepository(conn)
        self.timeline = TimelineRepository(conn)
