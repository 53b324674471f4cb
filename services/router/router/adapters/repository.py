"""Repositories over one connection; they never commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared.uow import SqlUnitOfWork

from . import orm


class RoundRobinState:
    """The pointer of each pool, locked for the transaction so instances never race."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, pool_id: str) -> int:
        t = orm.rr_state
        await self._conn.execute(insert(t).values(pool_id=pool_id).on_conflict_do_nothing())
        return int(await self._conn.scalar(
            sa.select(t.c.position).where(t.c.pool_id == pool_id).with_for_update()) or 0)

    async def set(self, pool_id: str, position: int, now: datetime) -> None:
        t = orm.rr_state
        await self._conn.execute(sa.update(t).where(t.c.pool_id == pool_id)
                                 .values(position=position, updated_at=now))


class Assignments:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, *, assignment_id: uuid.UUID, lead_id: str, stage: str,
                  owner_id: str | None, team_id: str, strategy: str, decision: dict[str, Any],
                  config_version: str, cause_event_id: uuid.UUID, now: datetime) -> None:
        await self._conn.execute(sa.insert(orm.assignments).values(
            id=assignment_id, lead_id=lead_id, stage=stage, owner_id=owner_id, team_id=team_id,
            strategy=strategy, decision=decision, config_version=config_version,
            cause_event_id=cause_event_id, created_at=now))


class RouterUnitOfWork(SqlUnitOfWork):
    pointers: RoundRobinState
    assignments: Assignments

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, orm.common)

    def _open(self, conn: AsyncConnection) -> None:
        self.pointers = RoundRobinState(conn)
        self.assignments = Assignments(conn)
