"""router's use cases: one transaction per batch of events, idempotent on event id.

A batch (one Kafka poll, or one API request) is claimed in one statement; the round-robin
pointers of every team it touches are locked in id order (so two router instances serialise on a
team and never deadlock), the reps' recent loads are read under that lock, each lead is decided
in order with the pure functions of ``domain``, and the assignments, pointers, loads, owners,
``lead.assigned`` events and webhooks are written in the same transaction.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

from opentelemetry.trace import Span

from leadrelay_shared import tracing
from leadrelay_shared.contracts import (
    Event,
    LeadAssigned,
    LeadErased,
    LeadSnapshot,
    Owner,
    Reason,
    RerouteRequested,
    Stage,
    StageChanged,
)
from leadrelay_shared.delivery import envelope
from leadrelay_shared.uow import UnitOfWork as BaseUnitOfWork

from . import domain
from .config import ROUTED_STAGES, RoutingConfig
from .domain import CurrentOwner

WEBHOOK_EVENT = "lead.assigned"


class Pointers(Protocol):
    async def lock_many(self, pool_ids: Iterable[str]) -> dict[str, int]: ...
    async def set_many(self, positions: dict[str, int], now: datetime) -> None: ...


class Loads(Protocol):
    async def recent(self, rep_ids: Iterable[str], now: datetime) -> dict[str, dict[date, int]]: ...
    async def add_many(self, increments: dict[tuple[str, date], int]) -> None: ...


class Owners(Protocol):
    async def get_many(self, lead_ids: Iterable[str]) -> dict[str, CurrentOwner]: ...
    async def put_many(self, owners: Sequence[CurrentOwner], now: datetime) -> None: ...
    async def scrub(self, lead_id: str) -> None: ...


class AssignmentStore(Protocol):
    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    # read-only members, so a unit of work whose repositories are these protocols' real
    # implementations (or the tests' fakes) conforms
    @property
    def pointers(self) -> Pointers: ...
    @property
    def loads(self) -> Loads: ...
    @property
    def owners(self) -> Owners: ...
    @property
    def assignments(self) -> AssignmentStore: ...

    async def enqueue_webhooks(self, rows: Sequence[dict[str, Any]]) -> None: ...
    async def scrub_webhooks(self, lead_id: str) -> None: ...


@dataclass
class Job:
    """One lead to (re)assign: the event that asks, the lead, the stage, and who to exclude."""

    event: StageChanged | RerouteRequested
    lead_id: str
    lead: LeadSnapshot
    stage: Stage
    target: domain.Target
    assignment_id: uuid.UUID
    previous: CurrentOwner | None = None


@dataclass
class Outcome:
    assignment_id: uuid.UUID
    decision: domain.Decision | None
    note: str | None = None


HANDLED = (StageChanged, RerouteRequested, LeadErased)
"""The event types router acts on; its consumer skips the others without decoding them."""


def routable(event: Event) -> bool:
    return isinstance(event, RerouteRequested) or (
        isinstance(event, StageChanged) and event.to_stage in ROUTED_STAGES
    )


async def handle(
    event: Event, *, uow: UnitOfWork, config: RoutingConfig, now: Callable[[], datetime]
) -> list[Outcome]:
    return await handle_batch([event], uow=uow, config=config, now=now)


async def handle_batch(
    events: Sequence[Event], *, uow: UnitOfWork, config: RoutingConfig, now: Callable[[], datetime]
) -> list[Outcome]:
    wanted = [e for e in events if routable(e) or isinstance(e, LeadErased)]
    if not wanted:
        return []
    async with uow:
        fresh = await uow.claim(wanted)
        for event in fresh:
            if isinstance(event, LeadErased):
                await _erase(event, uow)
        jobs = [e for e in fresh if not isinstance(e, LeadErased)]
        outcomes = await _route(jobs, uow, config, now()) if jobs else []
        await uow.commit()
    return outcomes


async def _erase(event: LeadErased, uow: UnitOfWork) -> None:
    """Honour an erasure: the lead's copies in our outbox, webhook queue, assignments and
    ownership lose personal data (a webhook still waiting is then sent without it)."""
    await uow.scrub_outbox(event.lead_id)
    await uow.scrub_webhooks(event.lead_id)
    await uow.owners.scrub(event.lead_id)


def _jobs(
    events: Sequence[Event], owners: dict[str, CurrentOwner], config: RoutingConfig
) -> tuple[list[Job | Outcome], set[str]]:
    """What each event asks for; stage changes earlier in the batch count for reroutes after."""
    known: dict[str, tuple[LeadSnapshot, Stage]] = {
        o.lead_id: (LeadSnapshot.model_validate(o.lead), Stage(o.stage)) for o in owners.values()
    }
    out: list[Job | Outcome] = []
    teams: set[str] = set()
    for event in events:
        assignment_id = uuid.uuid5(event.event_id, "assignment")
        if isinstance(event, StageChanged):
            lead, stage = event.lead, event.to_stage
            known[event.lead_id] = (lead, stage)
        elif event.lead_id in known:
            lead, stage = known[event.lead_id]
        else:
            out.append(
                Outcome(assignment_id, None, f"lead {event.lead_id} has no assignment to re-route")
            )
            continue
        assert isinstance(event, (StageChanged, RerouteRequested))
        target = domain.plan(lead, stage, config)
        if target.team_id:
            teams.add(target.team_id)
        out.append(Job(event, event.lead_id, lead, stage, target, assignment_id))
    return out, teams


def _reps_of(config: RoutingConfig, teams: set[str], jobs: Iterable[Job | Outcome]) -> set[str]:
    reps = {r for t in teams for r in config.teams[t].members}
    reps |= {j.target.direct_rep for j in jobs if isinstance(j, Job) and j.target.direct_rep}
    return reps


async def _route(
    events: Sequence[Event], uow: UnitOfWork, config: RoutingConfig, at: datetime
) -> list[Outcome]:
    owners = await uow.owners.get_many(e.lead_id for e in events)
    jobs, teams = _jobs(events, owners, config)
    pointers = await uow.pointers.lock_many(teams)
    loads = await uow.loads.recent(_reps_of(config, teams, jobs), at)
    writes = _Writes(config, at)
    outcomes: list[Outcome] = []
    for job in jobs:
        if isinstance(job, Outcome):
            outcomes.append(job)
            continue
        with tracing.span(
            "router.decide",
            job.lead_id,
            job.event.event_id,
            **{"leadrelay.event_type": job.event.event_type},
        ) as span:
            outcome = _decide(job, owners, pointers, loads, config, at)
            if span.is_recording():
                _describe(span, outcome)
        outcomes.append(outcome)
        if outcome.decision is not None:
            writes.add(job, outcome, owners, loads)
    touched = {t: pointers[t] for t in writes.pools}
    await uow.pointers.set_many(touched, at)
    await uow.loads.add_many(writes.loads)
    await uow.assignments.add_many(writes.assignments)
    await uow.owners.put_many(list(writes.owners.values()), at)
    await uow.emit(writes.events)
    await uow.enqueue_webhooks(writes.webhooks)
    return outcomes


def _decide(
    job: Job,
    owners: dict[str, CurrentOwner],
    pointers: dict[str, int],
    loads: dict[str, dict[date, int]],
    config: RoutingConfig,
    at: datetime,
) -> Outcome:
    assignment_id = job.assignment_id
    exclude: tuple[str, ...] = ()
    if isinstance(job.event, RerouteRequested):
        current = owners.get(job.lead_id)
        if current is None:
            return Outcome(assignment_id, None, f"lead {job.lead_id} has no assignment to re-route")
        if job.event.assignment_id and job.event.assignment_id != current.assignment_id:
            return Outcome(
                assignment_id,
                None,
                f"assignment {job.event.assignment_id} is no longer current; the request is stale",
            )
        job.previous = current
        exclude = (current.owner_id,) if current.owner_id else ()
    team = job.target.team_id
    decision = domain.choose(
        job.target, config, pointers.get(team, 0) if team else 0, loads, at, exclude
    )
    if isinstance(job.event, RerouteRequested):
        decision = _with_request(decision, job.event)
    if decision.moves_pointer:
        assert decision.team_id is not None and decision.pointer_after is not None
        pointers[decision.team_id] = decision.pointer_after
    return Outcome(assignment_id, decision)


def _describe(span: Span, outcome: Outcome) -> None:
    """What a routing decision's span says of it: where the lead went, by which rule."""
    d = outcome.decision
    if d is None:
        tracing.failed(span, outcome.note or "not routed")
        return
    span.set_attribute("leadrelay.routing.strategy", d.strategy)
    span.set_attribute("leadrelay.routing.config_version", d.config_version)
    for key, value in (
        ("rep", d.rep_id),
        ("queue", d.queue),
        ("team", d.team_id),
        ("territory", d.territory),
    ):
        if value is not None:
            span.set_attribute(f"leadrelay.routing.{key}", value)
    span.set_attribute("leadrelay.routing.reasons", [r.rule_id for r in d.reasons])


def _with_request(decision: domain.Decision, event: RerouteRequested) -> domain.Decision:
    asked = Reason(
        rule_id="reroute.requested",
        message=f"re-route requested by {event.requested_by}: {event.reason}",
    )
    return replace(decision, reasons=(asked, *decision.reasons))


class _Writes:
    """Everything a batch writes, gathered so each table gets one statement."""

    def __init__(self, config: RoutingConfig, at: datetime) -> None:
        self.config, self.at = config, at
        self.pools: set[str] = set()
        self.loads: dict[tuple[str, date], int] = defaultdict(int)
        self.assignments: list[dict[str, Any]] = []
        self.owners: dict[str, CurrentOwner] = {}
        self.events: list[Event] = []
        self.webhooks: list[dict[str, Any]] = []

    def add(
        self,
        job: Job,
        outcome: Outcome,
        owners: dict[str, CurrentOwner],
        loads: dict[str, dict[date, int]],
    ) -> None:
        d = outcome.decision
        assert d is not None
        if d.moves_pointer and d.team_id:
            self.pools.add(d.team_id)
        if d.rep_id is not None:
            rep = self.config.reps[d.rep_id]
            day = domain.local_day(rep, self.at)
            self.loads[(rep.id, day)] += 1
            per_day = loads.setdefault(rep.id, {})
            per_day[day] = per_day.get(day, 0) + 1
        previous = job.previous.owner_id if job.previous else None
        lead_json = job.lead.model_dump(mode="json")
        self.assignments.append(
            {
                "id": outcome.assignment_id,
                "lead_id": job.lead_id,
                "stage": job.stage.value,
                "owner_id": d.rep_id,
                "queue": d.queue,
                "team_id": d.team_id or "(none)",
                "strategy": d.strategy,
                "decision": d.as_record(),
                "config_version": d.config_version,
                "cause_event_id": job.event.event_id,
                "created_at": self.at,
                "kind": "reroute" if job.previous else "assign",
                "previous_owner_id": previous,
                "lead": lead_json,
            }
        )
        current = CurrentOwner(
            job.lead_id,
            outcome.assignment_id,
            d.rep_id,
            d.queue,
            d.team_id,
            job.stage.value,
            lead_json,
        )
        owners[job.lead_id] = self.owners[job.lead_id] = current
        assigned = self._event(job, outcome.assignment_id, d, previous)
        self.events.append(assigned)
        self.webhooks += webhooks_for(assigned, self.config, lead_json)

    def _event(
        self, job: Job, assignment_id: uuid.UUID, d: domain.Decision, previous: str | None
    ) -> LeadAssigned:
        manager = None
        if d.rep_id is not None:
            rep = self.config.reps[d.rep_id]
            owner = Owner(id=rep.id, name=rep.name, email=rep.email, time_zone=rep.zone.key)
            boss = self.config.reps.get(rep.manager) if rep.manager else None
            if boss is not None:
                manager = Owner(
                    id=boss.id, name=boss.name, email=boss.email, time_zone=boss.zone.key
                )
        else:
            owner = Owner(id=f"queue:{d.queue}", name=f"queue {d.queue}")
        scored = job.event if isinstance(job.event, StageChanged) else None
        cause_reasons = scored.reasons if scored else ()
        reasons = (*cause_reasons, *d.reasons)
        return LeadAssigned(
            event_id=uuid.uuid5(assignment_id, "lead.assigned"),
            lead_id=job.lead_id,
            occurred_at=self.at,
            assignment_id=assignment_id,
            stage=job.stage,
            owner=owner,
            team_id=d.team_id or "(none)",
            strategy=d.strategy,
            reasons=reasons,
            config_version=d.config_version,
            lead=job.lead,
            cause_event_id=job.event.event_id,
            queue=d.queue,
            account_id=d.account.account_id if d.account else None,
            territory=d.territory,
            previous_owner_id=previous,
            reassignment=job.previous is not None,
            summary=summary(reasons),
            manager=manager,
            segment=self.config.segment_of(job.lead.company_size),
            fit_grade=scored.fit_grade if scored else None,
            fit_score=scored.fit_score if scored else None,
            engagement_score=scored.engagement_score if scored else None,
        )


def webhooks_for(
    assigned: LeadAssigned, config: RoutingConfig, lead_json: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The ``lead.assigned`` webhook rows, one per subscribed endpoint (``lead_json``: the lead
    already dumped to JSON, when the caller has it)."""
    data = {
        "assignment_id": str(assigned.assignment_id),
        "lead_id": assigned.lead_id,
        "stage": assigned.stage.value,
        "owner": assigned.owner.model_dump(),
        "queue": assigned.queue,
        "team_id": assigned.team_id,
        "account_id": assigned.account_id,
        "territory": assigned.territory,
        "reassignment": assigned.reassignment,
        "previous_owner_id": assigned.previous_owner_id,
        "lead": lead_json if lead_json is not None else assigned.lead.model_dump(mode="json"),
        "summary": assigned.summary,
        "reasons": [r.model_dump() for r in assigned.reasons],
    }
    return [
        {
            "id": f"msg_{uuid.uuid5(assigned.assignment_id, endpoint.id).hex}",
            "endpoint_id": endpoint.id,
            "url": endpoint.url,
            "event_type": WEBHOOK_EVENT,
            "lead_id": assigned.lead_id,
            "payload": envelope(WEBHOOK_EVENT, assigned.occurred_at, data),
        }
        for endpoint in config.endpoints().values()
        if endpoint.wants(WEBHOOK_EVENT)
    ]


def summary(reasons: tuple[Reason, ...]) -> str:
    return "; ".join(r.message for r in reasons)
