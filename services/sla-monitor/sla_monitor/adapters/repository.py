"""Repositories over one connection; they never commit."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared import tracing
from leadrelay_shared.contracts import Stage
from leadrelay_shared.db import any_of
from leadrelay_shared.uow import SqlUnitOfWork

from ..domain import Alert, Clock, Handoff, Person, Touch
from . import orm

_STATE = ("status", "next_level", "next_at", "last_level", "breached_at", "ended_at", "outcome")


def _person(data: dict[str, Any] | None) -> Person | None:
    return Person(**data) if data else None


def row_of(c: Clock) -> dict[str, Any]:
    facts = None
    if c.facts is not None:
        f = c.facts
        facts = {
            "owner_zone": f.owner_zone,
            "segment": f.segment,
            "fit_grade": f.fit_grade,
            "fit_score": f.fit_score,
            "engagement_score": f.engagement_score,
            "reroutes": f.reroutes,
            "at": f.at.isoformat(),
        }
    return {
        "id": c.id,
        "lead_id": c.lead_id,
        "assignment_id": c.assignment_id,
        "stage": c.stage.value,
        "phase": c.phase,
        "owner_id": c.owner.id,
        "owner_name": c.owner.name,
        "owner_email": c.owner.email,
        "team_id": c.team_id,
        "manager": asdict(c.manager) if c.manager else None,
        "policy_id": c.policy_id,
        "policy_version": c.policy_version,
        "zone": c.zone,
        "status": c.status,
        "started_at": c.started_at,
        "deadline_s": c.deadline.total_seconds(),
        "due_at": c.due_at,
        "due_text": c.due_text,
        "warn_at": c.warn_at,
        "escalate_at": c.escalate_at,
        "reroute_at": c.reroute_at,
        "next_level": c.next_level,
        "next_at": c.next_at,
        "last_level": c.last_level,
        "breached_at": c.breached_at,
        "ended_at": c.ended_at,
        "outcome": c.outcome,
        "facts": facts,
    }


def clock_of(r: Any) -> Clock:
    owner = Person(r.owner_id, r.owner_name or r.owner_id, r.owner_email)
    manager = _person(r.manager)
    stage = Stage(r.stage)
    facts = None
    if r.facts:
        f = dict(r.facts)
        facts = Handoff(
            lead_id=r.lead_id,
            assignment_id=r.assignment_id,
            stage=stage,
            owner=owner,
            team_id=r.team_id,
            manager=manager,
            at=datetime.fromisoformat(f.pop("at")),
            **f,
        )
    return Clock(
        id=r.id,
        lead_id=r.lead_id,
        assignment_id=r.assignment_id,
        stage=stage,
        phase=r.phase,
        owner=owner,
        team_id=r.team_id,
        manager=manager,
        policy_id=r.policy_id,
        policy_version=r.policy_version,
        zone=r.zone,
        started_at=r.started_at,
        deadline=timedelta(seconds=r.deadline_s),
        due_at=r.due_at,
        due_text=r.due_text,
        warn_at=r.warn_at,
        escalate_at=r.escalate_at,
        reroute_at=r.reroute_at,
        status=r.status,
        next_level=r.next_level,
        next_at=r.next_at,
        last_level=r.last_level,
        breached_at=r.breached_at,
        ended_at=r.ended_at,
        outcome=r.outcome,
        facts=facts,
    )


class Clocks:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_many(self, clocks: Sequence[Clock]) -> None:
        if clocks:
            await self._conn.execute(
                insert(orm.clocks).on_conflict_do_nothing(index_elements=["id"]),
                [row_of(c) | {"traceparent": tracing.carry(c.lead_id)} for c in clocks],
            )

    async def open_for_lead(self, lead_id: str) -> list[Clock]:
        t = orm.clocks
        rows = await self._conn.execute(
            sa.select(t)
            .where(t.c.lead_id == lead_id, t.c.status == "open")
            .order_by(t.c.id)
            .with_for_update()
        )
        return [clock_of(r) for r in rows]

    async def latest_for_lead(self, lead_id: str) -> Clock | None:
        t = orm.clocks
        row = (
            await self._conn.execute(
                sa.select(t)
                .where(t.c.lead_id == lead_id)
                .order_by(t.c.started_at.desc(), t.c.phase.desc())
                .limit(1)
            )
        ).first()
        return clock_of(row) if row else None

    async def open_for_leads(self, lead_ids: Collection[str]) -> dict[str, list[Clock]]:
        """Each lead's open clocks (by id), locked: ``open_for_lead`` for many leads at once."""
        t = orm.clocks
        rows = await self._conn.execute(
            sa.select(t)
            .where(any_of(t.c.lead_id, lead_ids), t.c.status == "open")
            .order_by(t.c.id)
            .with_for_update()
        )
        found: dict[str, list[Clock]] = {}
        for r in rows:
            found.setdefault(r.lead_id, []).append(clock_of(r))
        return found

    async def latest_for_leads(self, lead_ids: Collection[str]) -> dict[str, Clock]:
        """Each lead's latest clock, open or not: ``latest_for_lead`` for many leads at once."""
        t = orm.clocks
        rows = await self._conn.execute(
            sa.select(t)
            .where(any_of(t.c.lead_id, lead_ids))
            .ext(distinct_on(t.c.lead_id))
            .order_by(t.c.lead_id, t.c.started_at.desc(), t.c.phase.desc())
        )
        return {r.lead_id: clock_of(r) for r in rows}

    async def save_many(self, clocks: Sequence[Clock]) -> None:
        """Write the state columns (status, next level, ends) of clocks read before."""
        if not clocks:
            return
        t = orm.clocks
        stmt = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"))
            .values({name: sa.bindparam(f"b_{name}", type_=t.c[name].type) for name in _STATE})
        )
        await self._conn.execute(
            stmt,
            [{"b_id": c.id, **{f"b_{name}": getattr(c, name) for name in _STATE}} for c in clocks],
        )

    async def claim_due(self, now: datetime, limit: int) -> list[Clock]:
        """Clocks whose next level is due, locked; other schedulers skip them. Each clock's
        lead goes on with the trace its clock was started in."""
        t = orm.clocks
        rows = await self._conn.execute(
            sa.select(t)
            .where(t.c.next_at <= now)
            .order_by(t.c.next_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        clocks = []
        for r in rows:
            tracing.resume(r.lead_id, r.traceparent)
            clocks.append(clock_of(r))
        return clocks


class Touches:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, touch: Touch) -> None:
        await self._conn.execute(
            insert(orm.touches)
            .values(
                event_id=touch.event_id,
                lead_id=touch.lead_id,
                kind=touch.kind,
                type=touch.type,
                actor_id=touch.actor_id,
                occurred_at=touch.at,
            )
            .on_conflict_do_nothing()
        )

    async def add_many(self, touches: Sequence[Touch]) -> None:
        if touches:
            await self._conn.execute(
                insert(orm.touches).on_conflict_do_nothing(),
                [
                    {
                        "event_id": t.event_id,
                        "lead_id": t.lead_id,
                        "kind": t.kind,
                        "type": t.type,
                        "actor_id": t.actor_id,
                        "occurred_at": t.at,
                    }
                    for t in touches
                ],
            )

    async def for_leads(self, lead_ids: Collection[str]) -> dict[str, list[Touch]]:
        """Each lead's touches, oldest first: ``for_lead`` for many leads at once."""
        t = orm.touches
        rows = await self._conn.execute(
            sa.select(t).where(any_of(t.c.lead_id, lead_ids)).order_by(t.c.occurred_at)
        )
        found: dict[str, list[Touch]] = {}
        for r in rows:
            found.setdefault(r.lead_id, []).append(
                Touch(r.event_id, r.lead_id, r.kind, r.type, r.actor_id, r.occurred_at)
            )
        return found

    async def for_lead(self, lead_id: str) -> list[Touch]:
        t = orm.touches
        rows = await self._conn.execute(
            sa.select(t).where(t.c.lead_id == lead_id).order_by(t.c.occurred_at)
        )
        return [
            Touch(r.event_id, r.lead_id, r.kind, r.type, r.actor_id, r.occurred_at) for r in rows
        ]


class Alerts:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_many(self, alerts: Sequence[Alert]) -> set[uuid.UUID]:
        """Record alerts; returns the ids that are new (an alert is recorded only once)."""
        if not alerts:
            return set()
        t = orm.alerts
        rows = [
            {
                "id": a.id,
                "clock_id": a.clock.id,
                "lead_id": a.clock.lead_id,
                "level": a.level,
                "policy_id": a.clock.policy_id,
                "team_id": a.clock.team_id,
                "owner_id": a.clock.owner.id,
                "scheduled_at": a.scheduled_at,
                "fired_at": a.fired_at,
                "summary": a.summary,
                "reasons": [r.model_dump() for r in a.reasons],
            }
            for a in alerts
        ]
        # executemany with RETURNING: one compiled statement, sent as batched VALUES lists
        result = await self._conn.execute(
            insert(t).on_conflict_do_nothing().returning(t.c.id), rows
        )
        return {r.id for r in result}


class SlaUnitOfWork(SqlUnitOfWork):
    clocks: Clocks
    touches: Touches
    alerts: Alerts

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine, orm.common)

    def _open(self, conn: AsyncConnection) -> None:
        self.clocks = Clocks(conn)
        self.touches = Touches(conn)
        self.alerts = Alerts(conn)
