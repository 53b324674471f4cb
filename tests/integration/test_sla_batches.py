"""sla-monitor's batch handler on the real PostgreSQL: a poll handled in one transaction ends in
the same clocks as its events handled one at a time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from leadrelay_shared.contracts import Event, Stage, StageChanged
from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade
from sla_monitor import handlers
from sla_monitor.adapters import orm
from sla_monitor.adapters.repository import SlaUnitOfWork
from sla_monitor.config import DEFAULT_PATH, load
from tests.factories import T0, activity, assigned, feedback, form

pytestmark = pytest.mark.integration
CONFIG = load(DEFAULT_PATH)


def story(tag: str) -> list[Event]:
    """Leads whose events depend on each other: a touch after its assignment; a touch that
    arrives before the assignment it works; a re-route to another rep; a redelivery; an accept
    (SAL follow-up clock), then a close."""
    a, b, c, d = (f"{tag}-{n}" for n in "abcd")
    first_b = assigned(b, at=T0)
    sal = StageChanged(
        lead_id=d,
        occurred_at=T0 + timedelta(minutes=5),
        from_stage=Stage.MQL,
        to_stage=Stage.SAL,
        reasons=(),
        model_version="m",
        cause_event_id=uuid.uuid4(),
        lead=form().lead,
    )
    won = StageChanged(
        lead_id=d,
        occurred_at=T0 + timedelta(minutes=9),
        from_stage=Stage.SAL,
        to_stage=Stage.DISQUALIFIED,
        reasons=(),
        model_version="m",
        cause_event_id=uuid.uuid4(),
        lead=form().lead,
    )
    return [
        assigned(a, at=T0),
        activity(a, at=T0 + timedelta(minutes=2)),
        first_b,
        assigned(b, owner="rep-ben", at=T0 + timedelta(minutes=3)),
        first_b,
        activity(c, at=T0 + timedelta(minutes=1)),
        assigned(c, at=T0),
        assigned(d, at=T0),
        feedback(d, "accepted", at=T0 + timedelta(minutes=4)),
        sal,
        activity(d, at=T0 + timedelta(minutes=6)),
        won,
    ]


async def clocks(engine: Any, tag: str) -> list[tuple[str, ...]]:
    t = orm.clocks
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(t).where(t.c.lead_id.like(f"{tag}-%")))
        return sorted(
            (
                r.lead_id.removeprefix(tag),
                r.status,
                str(r.phase),
                r.owner_id,
                r.policy_id,
                r.stage,
                str(r.ended_at),
            )
            for r in rows
        )


async def test_a_batch_ends_as_its_events_one_at_a_time(database_url: str) -> None:
    await asyncio.to_thread(upgrade, "sla_monitor", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    try:

        async def handle(events: list[Event]) -> None:
            await handlers.handle_batch(
                events, uow=SlaUnitOfWork(engine), config=lambda: CONFIG, now=lambda: T0
            )

        for event in story("one"):
            await handle([event])
        await handle(story("all"))
        one, batch = await clocks(engine, "one"), await clocks(engine, "all")
        assert batch == one
        assert {(r[0], r[1]) for r in batch} >= {
            ("-a", "worked"),
            ("-b", "reassigned"),
            ("-b", "open"),
            ("-c", "worked"),
        }
        assert len(batch) >= 6
    finally:
        await engine.dispose()
