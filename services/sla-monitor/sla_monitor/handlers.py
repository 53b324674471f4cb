"""sla-monitor's use cases: start, stop and restart clocks from events; fire due levels.

Each handler runs in one transaction: the clock's state, the alerts recorded, the events in the
outbox and the alert webhooks queued all commit together, or none of them do.
"""

from __future__ import annotations

import uuid
from bisect import insort
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from leadrelay_shared import tracing
from leadrelay_shared.contracts import (
    ActivityLogged,
    Event,
    FeedbackReceived,
    LeadAssigned,
    Reason,
    RerouteRequested,
    SlaBreached,
    Stage,
    StageChanged,
)
from leadrelay_shared.delivery import envelope
from leadrelay_shared.uow import UnitOfWork as BaseUnitOfWork

from . import domain
from .calendar import local_text
from .config import SlaConfig
from .domain import SEVERITY, Alert, Clock, Handoff, Person, Touch
from .metrics import ALERTS, LATENESS

ALERT_TYPES = {
    "warning": "sla.warning",
    "breach": "sla.breached",
    "escalation": "sla.escalated",
    "reroute": "sla.reroute_requested",
    "resolved": "sla.resolved",
}
REQUESTED_BY = "sla-monitor"


class ClockStore(Protocol):
    async def add_many(self, clocks: Sequence[Clock]) -> None: ...
    async def open_for_leads(self, lead_ids: Collection[str]) -> dict[str, list[Clock]]: ...
    async def latest_for_leads(self, lead_ids: Collection[str]) -> dict[str, Clock]: ...
    async def save_many(self, clocks: Sequence[Clock]) -> None: ...
    async def claim_due(self, now: datetime, limit: int) -> list[Clock]: ...


class TouchStore(Protocol):
    async def add_many(self, touches: Sequence[Touch]) -> None: ...
    async def for_leads(self, lead_ids: Collection[str]) -> dict[str, list[Touch]]: ...


class AlertStore(Protocol):
    async def add_many(self, alerts: Sequence[Alert]) -> set[uuid.UUID]: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    # read-only members, so a unit of work whose repositories are these protocols' real
    # implementations (or the tests' fakes) conforms
    @property
    def clocks(self) -> ClockStore: ...
    @property
    def touches(self) -> TouchStore: ...
    @property
    def alerts(self) -> AlertStore: ...

    async def enqueue_webhooks(self, rows: Sequence[dict[str, Any]]) -> None: ...


def handoff_of(event: LeadAssigned, previous: Clock | None, reroutes: int = 0) -> Handoff:
    """The facts of an assignment; a re-route without scores keeps the last known ones."""
    o, m = event.owner, event.manager
    known = previous.facts if previous is not None else None
    return Handoff(
        lead_id=event.lead_id,
        assignment_id=event.assignment_id,
        stage=event.stage,
        owner=Person(o.id, o.name, o.email),
        team_id=event.team_id,
        at=event.occurred_at,
        owner_zone=o.time_zone,
        manager=Person(m.id, m.name, m.email) if m else None,
        segment=event.segment or (known.segment if known else None),
        fit_grade=event.fit_grade or (known.fit_grade if known else None),
        fit_score=event.fit_score
        if event.fit_score is not None
        else (known.fit_score if known else None),
        engagement_score=event.engagement_score
        if event.engagement_score is not None
        else (known.engagement_score if known else None),
        reroutes=reroutes,
    )


def reroutes_before(event: LeadAssigned, clocks: Sequence[Clock]) -> int:
    """How many re-routes in a row, unworked, led to this assignment: one more than the clock
    whose re-route request caused it had behind it; 0 for anything else (a first assignment,
    a re-route an operator asked for, router's own reassignment)."""
    if not event.reassignment:
        return 0
    for clock in clocks:
        if domain.reroute_event_id(clock.id) == event.cause_event_id:
            return (clock.facts.reroutes if clock.facts else 0) + 1
    return 0


def touch_of(event: ActivityLogged | FeedbackReceived) -> Touch:
    if isinstance(event, ActivityLogged):
        return Touch(
            event.event_id,
            event.lead_id,
            "activity",
            event.activity_type,
            event.actor_id,
            event.occurred_at,
        )
    return Touch(
        event.event_id, event.lead_id, "feedback", event.feedback, event.actor_id, event.occurred_at
    )


class _Leads:
    """The clocks and touches of a batch's leads, read once at the start of the transaction
    (open clocks locked) and kept as the database would have them as each event changes them, so
    the batch's events are decided in order as if each had been handled on its own."""

    def __init__(
        self,
        open_: dict[str, list[Clock]],
        latest: dict[str, Clock],
        touches: dict[str, list[Touch]],
    ) -> None:
        self._open = open_
        self._latest = latest
        self._touches = touches

    @classmethod
    async def load(cls, uow: UnitOfWork, lead_ids: Collection[str]) -> _Leads:
        return cls(
            await uow.clocks.open_for_leads(lead_ids),
            await uow.clocks.latest_for_leads(lead_ids),
            await uow.touches.for_leads(lead_ids),
        )

    def open_for_lead(self, lead_id: str) -> list[Clock]:
        """Open clocks by id, as ``ClockStore.open_for_leads`` gives them."""
        return list(self._open.get(lead_id, ()))

    def latest_for_lead(self, lead_id: str) -> Clock | None:
        return self._latest.get(lead_id)

    def touches_for_lead(self, lead_id: str) -> list[Touch]:
        return list(self._touches.get(lead_id, ()))

    def saw(self, clock: Clock) -> None:
        """A clock started or changed: the lead's open clocks and latest clock follow."""
        kept = [c for c in self._open.get(clock.lead_id, ()) if c.id != clock.id]
        if clock.status == "open":
            insort(kept, clock, key=lambda c: c.id)
        self._open[clock.lead_id] = kept
        latest = self._latest.get(clock.lead_id)
        if (
            latest is None
            or latest.id == clock.id
            or (clock.started_at, clock.phase) > (latest.started_at, latest.phase)
        ):
            self._latest[clock.lead_id] = clock

    def touched(self, touch: Touch) -> None:
        known = self._touches.setdefault(touch.lead_id, [])
        if all(t.event_id != touch.event_id for t in known):
            insort(known, touch, key=lambda t: t.at)


class _Changes:
    """What one transaction writes: clocks started and changed, touches, alerts, events. With
    ``leads``, every clock started or changed is also shown to them."""

    def __init__(self, config: SlaConfig, leads: _Leads | None = None) -> None:
        self.config = config
        self.leads = leads
        self.started: list[Clock] = []
        self.changed: list[Clock] = []
        self.touches: list[Touch] = []
        self.alerts: list[Alert] = []
        self.events: list[Event] = []

    def start(self, clock: Clock) -> None:
        self.started.append(clock)
        if self.leads is not None:
            self.leads.saw(clock)

    def end(self, clock: Clock, status: str, at: datetime, why: Reason) -> None:
        ended, resolved = domain.end(clock, status, at, why)
        self.changed.append(ended)
        if self.leads is not None:
            self.leads.saw(ended)
        if resolved is not None:
            self.alerts.append(resolved)

    async def write(self, uow: UnitOfWork) -> bool:
        """Write it all; True when events went to the outbox or webhooks were queued."""
        await uow.touches.add_many(self.touches)
        await uow.clocks.add_many(self.started)
        await uow.clocks.save_many(self.changed)
        fresh = await uow.alerts.add_many(self.alerts)
        alerts = [a for a in self.alerts if a.id in fresh]
        events = [*self.events, *(e for a in alerts for e in events_for(a))]
        await uow.emit(events)
        await uow.enqueue_webhooks([w for a in alerts for w in webhooks_for(a, self.config)])
        for a in alerts:
            ALERTS.labels(a.level, a.clock.policy_id).inc()
        return bool(events or alerts)


HANDLED = (LeadAssigned, ActivityLogged, FeedbackReceived, StageChanged)
"""The event types sla-monitor acts on; its consumer skips the others without decoding them."""


async def handle_batch(
    events: Sequence[Event],
    *,
    uow: UnitOfWork,
    config: Callable[[], SlaConfig],
    now: Callable[[], datetime],
) -> bool:
    """A poll's events in one transaction: one claim, one read of their leads' clocks and
    touches (``_Leads``), each event decided in order against what the ones before it changed,
    then one write per table. The outcome is the one of handling them one by one.

    True when the batch wrote outbox rows or queued webhooks (the caller wakes the relay and
    the deliverer only then: most batches start and stop clocks and send nothing)."""
    wanted = [e for e in events if _acts_on(e)]
    if not wanted:
        return False
    sent = False
    async with uow:
        fresh = await uow.claim(wanted)
        if fresh:
            leads = await _Leads.load(uow, {e.lead_id for e in fresh})
            changes = _Changes(config(), leads)
            for event in fresh:
                if isinstance(event, LeadAssigned):
                    # the clock it starts keeps this span's context, for the alerts it fires
                    with tracing.span("sla.clock", event.lead_id, event.event_id):
                        _assigned(event, leads, changes)
                elif isinstance(event, StageChanged):
                    _stage(event, leads, changes)
                else:
                    _touched(touch_of(event), leads, changes)  # type: ignore[arg-type]
            sent = await changes.write(uow)
        await uow.commit()
    return sent


def _acts_on(event: Event) -> bool:
    if not isinstance(event, HANDLED):
        return False
    return (
        not isinstance(event, StageChanged)
        or event.to_stage == Stage.SAL
        or event.to_stage in domain.CLOSING_STAGES
    )


def _start(h: Handoff, leads: _Leads, changes: _Changes) -> Clock | None:
    policy, _ = domain.select(changes.config, h)
    if policy is None:
        return None
    clock = domain.start_clock(h, policy, changes.config.version)
    # A touch may have been consumed before the handoff (they travel on other topics).
    for touch in leads.touches_for_lead(h.lead_id):
        why = domain.works(clock, touch)
        if why is not None:
            clock, _ = domain.end(clock, "worked", touch.at, why)
            break
    changes.start(clock)
    return clock


def _assigned(event: LeadAssigned, leads: _Leads, changes: _Changes) -> None:
    previous = leads.latest_for_lead(event.lead_id)
    open_ = leads.open_for_lead(event.lead_id)
    reroutes = reroutes_before(event, [*open_, *([previous] if previous else [])])
    for clock in open_:
        if clock.assignment_id == event.assignment_id:
            return  # this assignment already has its clock
        changes.end(
            clock,
            "reassigned",
            event.occurred_at,
            Reason(
                rule_id="sla.reassigned",
                message=f"reassigned to {event.owner.name} ({event.owner.id}); a new clock starts",
            ),
        )
    _start(handoff_of(event, previous, reroutes), leads, changes)


def _stage(event: StageChanged, leads: _Leads, changes: _Changes) -> None:
    if event.to_stage in domain.CLOSING_STAGES:
        for clock in leads.open_for_lead(event.lead_id):
            changes.end(
                clock,
                "closed",
                event.occurred_at,
                Reason(rule_id="sla.closed", message=f"lead moved to {event.to_stage.value}"),
            )
        return
    latest = leads.latest_for_lead(event.lead_id)
    if latest is None or latest.facts is None:
        return  # never handed to a rep: nobody to hold to a SAL follow-up
    h = replace(
        latest.facts,
        stage=Stage.SAL,
        at=event.occurred_at,
        owner=latest.owner,
        manager=latest.manager,
        reroutes=0,
    )
    if _start(h, leads, changes) is None:
        return
    for clock in leads.open_for_lead(event.lead_id):
        if clock.stage != Stage.SAL:
            changes.end(
                clock,
                "closed",
                event.occurred_at,
                Reason(
                    rule_id="sla.closed", message="lead accepted (SAL): the SAL policy takes over"
                ),
            )


def _touched(touch: Touch, leads: _Leads, changes: _Changes) -> None:
    changes.touches.append(touch)
    leads.touched(touch)
    for clock in leads.open_for_lead(touch.lead_id):
        why = domain.works(clock, touch)
        if why is not None:
            changes.end(clock, "worked", touch.at, why)
            nxt = domain.follow_up(
                clock, changes.config.policy(clock.policy_id), touch, changes.config.version
            )
            if nxt is not None:
                changes.start(nxt)
        elif domain.closes(touch) and touch.at >= clock.started_at:
            changes.end(
                clock,
                "closed",
                touch.at,
                Reason(rule_id="sla.closed", message=f"sales feedback '{touch.type}'"),
            )


async def fire_due(
    *, uow: UnitOfWork, config: SlaConfig, now: datetime, limit: int = 500
) -> list[Alert]:
    """Fire the next level of every clock that is due, once; one transaction for the batch."""
    async with uow:
        changes = _Changes(config)
        for clock in await uow.clocks.claim_due(now, limit):
            with tracing.span(
                "sla.alert",
                clock.lead_id,
                **{
                    "leadrelay.sla.level": clock.next_level,
                    "leadrelay.sla.policy": clock.policy_id,
                },
            ):
                alert, moved = domain.fire(clock, now)
            changes.changed.append(moved)
            changes.alerts.append(alert)
            if alert.level == "reroute":
                changes.events.append(
                    RerouteRequested(
                        event_id=domain.reroute_event_id(clock.id),
                        lead_id=clock.lead_id,
                        occurred_at=now,
                        assignment_id=clock.assignment_id,
                        reason=f"SLA {clock.policy_id} {clock.what} deadline missed by "
                        f"{clock.owner.id}",
                        requested_by=REQUESTED_BY,
                    )
                )
        await changes.write(uow)
        await uow.commit()
    for alert in changes.alerts:
        LATENESS.observe(max(0.0, (alert.fired_at - alert.scheduled_at).total_seconds()))
    return changes.alerts


def events_for(alert: Alert) -> list[Event]:
    if alert.level != "breach":
        return []
    c = alert.clock
    return [
        SlaBreached(
            event_id=uuid.uuid5(c.id, "breach"),
            lead_id=c.lead_id,
            occurred_at=alert.fired_at,
            clock_id=c.id,
            assignment_id=c.assignment_id,
            owner_id=c.owner.id,
            team_id=c.team_id,
            policy_id=c.policy_id,
            started_at=c.started_at,
            due_at=c.due_at,
            reasons=alert.reasons,
        )
    ]


def alert_data(alert: Alert) -> dict[str, Any]:
    """The alert as every channel sees it (PagerDuty and Slack take what they need)."""
    c = alert.clock
    return {
        "alert_id": str(alert.id),
        "level": alert.level,
        "lead_id": c.lead_id,
        "clock_id": str(c.id),
        "assignment_id": str(c.assignment_id),
        "stage": c.stage.value,
        "phase": c.phase,
        "sla": c.what,
        "policy_id": c.policy_id,
        "policy_version": c.policy_version,
        "owner_id": c.owner.id,
        "owner": {"id": c.owner.id, "name": c.owner.name, "email": c.owner.email},
        "manager": (
            {"id": c.manager.id, "name": c.manager.name, "email": c.manager.email}
            if c.manager
            else None
        ),
        "team_id": c.team_id,
        "time_zone": c.zone,
        "started_at": c.started_at.isoformat(),
        "due_at": c.due_at.isoformat(),
        "due_local": local_text(c.due_at, ZoneInfo(c.zone)),
        "scheduled_at": alert.scheduled_at.isoformat(),
        "fired_at": alert.fired_at.isoformat(),
        "breached_at": c.breached_at.isoformat() if c.breached_at else None,
        "summary": alert.summary,
        "text": alert.summary,
        "reasons": [r.model_dump() for r in alert.reasons],
        "action": "resolve" if alert.level == "resolved" else "trigger",
        "dedup_key": f"leadrelay-sla-{c.id}",
        "severity": SEVERITY.get(alert.level, "info"),
        "source": "leadrelay-sla-monitor",
        "component": c.policy_id,
        "group": c.team_id,
    }


def webhooks_for(alert: Alert, config: SlaConfig) -> list[dict[str, Any]]:
    event_type = ALERT_TYPES[alert.level]
    payload = envelope(event_type, alert.fired_at, alert_data(alert))
    return [
        {
            "id": f"msg_{uuid.uuid5(alert.id, endpoint.id).hex}",
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "event_type": event_type,
            "lead_id": alert.clock.lead_id,
            "payload": payload,
        }
        for endpoint in config.channels_for(alert.clock.policy_id, alert.level)
    ]
