"""sla-monitor's use cases: start and stop clocks from events; fire breaches when due."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from leadrelay_shared.contracts import ActivityLogged, Event, LeadAssigned, SlaBreached
from leadrelay_shared.delivery import Endpoint, envelope
from leadrelay_shared.uow import UnitOfWork as BaseUnitOfWork

from . import domain
from .domain import Clock, Policy

ALERT_EVENT = "sla.breached"


class ClockStore(Protocol):
    async def add(self, clock: Clock) -> None: ...
    async def open_for_lead(self, lead_id: str) -> list[Clock]: ...
    async def set_status(self, clock_id: uuid.UUID, status: str, at: datetime) -> None: ...
    async def claim_due(self, now: datetime, limit: int) -> list[Clock]: ...


class ActivityStore(Protocol):
    async def add(self, *, event_id: uuid.UUID, lead_id: str, activity_type: str,
                  actor_id: str | None, occurred_at: datetime) -> None: ...
    async def times_for_lead(self, lead_id: str) -> list[datetime]: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    clocks: ClockStore
    activities: ActivityStore


async def handle(event: Event, *, uow: UnitOfWork, policy: Policy,
                 now: Callable[[], datetime]) -> None:
    if not isinstance(event, (LeadAssigned, ActivityLogged)):
        return
    async with uow:
        if not await uow.claim(event.event_id, event.event_type):
            return
        if isinstance(event, LeadAssigned):
            await _start(event, uow, policy, now())
        else:
            await _activity(event, uow, now())
        await uow.commit()


async def _start(event: LeadAssigned, uow: UnitOfWork, policy: Policy, at: datetime) -> None:
    for previous in await uow.clocks.open_for_lead(event.lead_id):
        await uow.clocks.set_status(previous.id, "superseded", at)  # a reassignment restarts
    clock = domain.start_clock(
        clock_id=uuid.uuid5(event.assignment_id, "clock"), lead_id=event.lead_id,
        assignment_id=event.assignment_id, owner_id=event.owner.id, team_id=event.team_id,
        assigned_at=event.occurred_at, policy=policy)
    await uow.clocks.add(clock)
    # An activity may have been consumed before the assignment (they travel on other topics).
    worked = next((t for t in await uow.activities.times_for_lead(event.lead_id)
                   if domain.stops_clock(clock, t)), None)
    if worked is not None:
        await uow.clocks.set_status(clock.id, "worked", worked)


async def _activity(event: ActivityLogged, uow: UnitOfWork, at: datetime) -> None:
    await uow.activities.add(event_id=event.event_id, lead_id=event.lead_id,
                             activity_type=event.activity_type, actor_id=event.actor_id,
                             occurred_at=event.occurred_at)
    for clock in await uow.clocks.open_for_lead(event.lead_id):
        if domain.stops_clock(clock, event.occurred_at):
            await uow.clocks.set_status(clock.id, "worked", event.occurred_at)


async def fire_due(*, uow: UnitOfWork, now: datetime, ops: Endpoint, limit: int = 200) -> int:
    """Breach every open clock past due, once: status, event and alert in one transaction."""
    async with uow:
        fired = 0
        for clock in await uow.clocks.claim_due(now, limit):
            breach = domain.check(clock, now)
            if breach is None:
                continue
            await uow.clocks.set_status(clock.id, "breached", now)
            await _alert(breach, uow, ops, now)
            fired += 1
        await uow.commit()
    return fired


async def _alert(breach: domain.Breach, uow: UnitOfWork, ops: Endpoint, now: datetime) -> None:
    c = breach.clock
    event = SlaBreached(
        event_id=uuid.uuid5(c.id, "breach"), lead_id=c.lead_id, occurred_at=now, clock_id=c.id,
        assignment_id=c.assignment_id, owner_id=c.owner_id, team_id=c.team_id,
        policy_id=c.policy_id, started_at=c.started_at, due_at=c.due_at, reasons=breach.reasons)
    await uow.emit(event)
    data = {"lead_id": c.lead_id, "clock_id": str(c.id), "assignment_id": str(c.assignment_id),
            "owner_id": c.owner_id, "team_id": c.team_id, "policy_id": c.policy_id,
            "started_at": c.started_at.isoformat(), "due_at": c.due_at.isoformat(),
            "breached_at": now.isoformat(), "summary": breach.reasons[0].message,
            "reasons": [r.model_dump() for r in breach.reasons]}
    await uow.enqueue_webhook(
        delivery_id=f"msg_{uuid.uuid5(c.id, ops.id).hex}", endpoint_id=ops.id, url=ops.url,
        event_type=ALERT_EVENT, lead_id=c.lead_id, payload=envelope(ALERT_EVENT, now, data))
