from __future__ import annotations

import uuid
from datetime import timedelta

from leadrelay_shared.contracts import LeadAssigned, Owner, SlaBreached, Stage
from leadrelay_shared.delivery import Endpoint
from sla_monitor import domain, handlers
from sla_monitor.domain import Policy
from tests.factories import T0, activity, form
from tests.unit.fakes import FakeSlaUow

POLICY = Policy(id="first-touch", first_touch=timedelta(minutes=15))
OPS = Endpoint(id="ops", url="http://ops.invalid", secret="whsec_dGVzdA==")


def assigned(lead_id: str, at=T0) -> LeadAssigned:  # type: ignore[no-untyped-def]
    f = form()
    return LeadAssigned(lead_id=lead_id, occurred_at=at, assignment_id=uuid.uuid4(),
                        stage=Stage.MQL, owner=Owner(id="rep-ana", name="Ana"), team_id="sdr",
                        strategy="round_robin", reasons=(), config_version="c1", lead=f.lead,
                        cause_event_id=f.event_id)


def clock() -> domain.Clock:
    return domain.start_clock(clock_id=uuid.uuid4(), lead_id="l", assignment_id=uuid.uuid4(),
                              owner_id="rep", team_id="t", assigned_at=T0, policy=POLICY)


def test_deadline_and_what_stops_it() -> None:
    c = clock()
    assert c.due_at == T0 + timedelta(minutes=15)
    assert domain.stops_clock(c, T0)
    assert domain.stops_clock(c, c.due_at - timedelta(microseconds=1))
    assert not domain.stops_clock(c, c.due_at)
    assert not domain.stops_clock(c, T0 - timedelta(seconds=1))


def test_breach_only_at_or_after_the_deadline() -> None:
    c = clock()
    assert domain.check(c, c.due_at - timedelta(milliseconds=1)) is None
    breach = domain.check(c, c.due_at)
    assert breach is not None and "within 15 minutes" in breach.reasons[0].message


async def test_activity_stops_clock_and_nothing_fires() -> None:
    uow = FakeSlaUow()
    event = assigned("lead-1")
    await handlers.handle(event, uow=uow, policy=POLICY, now=lambda: T0)
    await handlers.handle(activity("lead-1", at=T0 + timedelta(minutes=3)), uow=uow,
                          policy=POLICY, now=lambda: T0)
    fired = await handlers.fire_due(uow=uow, now=T0 + timedelta(hours=1), ops=OPS)
    assert fired == 0 and uow.webhooks == {}


async def test_activity_seen_before_the_assignment_still_counts() -> None:
    uow = FakeSlaUow()
    await handlers.handle(activity("lead-2", at=T0 + timedelta(minutes=1)), uow=uow,
                          policy=POLICY, now=lambda: T0)
    event = assigned("lead-2")
    await handlers.handle(event, uow=uow, policy=POLICY, now=lambda: T0)
    assert [s for _, s in uow.clocks.rows.values()] == ["worked"]


async def test_unworked_lead_fires_exactly_once() -> None:
    uow = FakeSlaUow()
    await handlers.handle(assigned("lead-3"), uow=uow, policy=POLICY, now=lambda: T0)
    assert await handlers.fire_due(uow=uow, now=T0 + timedelta(minutes=14), ops=OPS) == 0
    assert await handlers.fire_due(uow=uow, now=T0 + timedelta(minutes=15), ops=OPS) == 1
    assert await handlers.fire_due(uow=uow, now=T0 + timedelta(minutes=30), ops=OPS) == 0
    assert [type(e) for e in uow.outbox] == [SlaBreached]
    assert len(uow.webhooks) == 1


async def test_reassignment_restarts_the_clock() -> None:
    uow = FakeSlaUow()
    first, second = assigned("lead-4"), assigned("lead-4", at=T0 + timedelta(minutes=10))
    await handlers.handle(first, uow=uow, policy=POLICY, now=lambda: T0)
    await handlers.handle(second, uow=uow, policy=POLICY, now=lambda: T0)
    assert sorted(s for _, s in uow.clocks.rows.values()) == ["open", "superseded"]
    assert await handlers.fire_due(uow=uow, now=T0 + timedelta(minutes=16), ops=OPS) == 0
