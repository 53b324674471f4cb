"""Repositories over one connection; they never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared.uow import SqlUnitOfWork

from ..domain import Clock
from . import orm

_CLOCK_COLUMNS = ("id", "lead_id", "assignment_id", "owner_id", "team_id", "policy_id",
                  "started_at", "due_at")


def _clock(row: Any) -> Clock:
    return Clock(**{name: getattr(row, name) for name in _CLOCK_COLUMNS})


class Clocks:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, clock: Clock) -> None:
        values = {name: getattr(clock, name) for name in _CLOCK_COLUMNS}
        await self._conn.execute(insert(orm.clocks).values(**values)
                                 .on_conflict_do_nothing(index_elements=["assignment_id"]))

    async def open_for_lead(self, lead_id: str) -> list[Clock]:
        t = orm.clocks
        rows = await self._conn.execute(sa.select(t).where(t.c.lead_id == lead_id,
                                                           t.c.status == "open").with_for_update())
        return [_clock(r) for r in rows]

    async def set_status(self, clock_id: uuid.UUID, status: str, at: datetime) -> None:
        t = orm.clocks
        column = {"worked": "worked_at", "breached": "breached_at"}.get(status)
        values: dict[str, Any] = {"status": status}
        if column:
            values[column] = at
        await self._conn.execute(sa.update(t).where(t.c.id == clock_id).values(**values))

    async def claim_due(self, now: datetime, limit: int) -> list[Clock]:
        """Open clocks past due, locked; other schedulers skip them."""
        t = orm.clocks
        rows = await self._conn.execute(
            sa.select(t).where(t.c.status == "open", t.c.due_at <= now).order_by(t.c.due_at)
            .limit(limit).with_for_update(skip_locked=True))
        return [_clock(r) for r in rows]


class Activities:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, *, event_id: uuid.UUID, lead_id: str, activity_type: str,
                  actor_id: str | None, occurred_at: datetime) -> None:
        await self._conn.execute(insert(orm.activities).values(
            event_id=event_id, lead_id=lead_id, activity_type=activity_type, actor_id=actor_id,
            occurred_at=occurred_at).on_conflict_do_nothing())

    async def times_for_lead(self, lead_id: str) -> list[datetime]:
        t = orm.activities
        rows = await self._conn.execute(sa.select(t.c.occurred_at).where(t.c.lead_id == lead_id)
                                        .order_by(t.c.occurred_at))
        return [r.occurred_at for r in rows]


class SlaUnitOfWork(SqlUnitOfWork):
    clocks: Clocks
    activities: Activities

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, orm.common)

    def _open(self, conn: AsyncConnection) -> None:
        self.clocks = Clocks(conn)
        self.activities = Activities(conn)
