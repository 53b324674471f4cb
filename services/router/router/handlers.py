"""router's use cases: one transaction per event, idempotent on event id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from leadrelay_shared.contracts import (
    Event,
    LeadAssigned,
    LeadErased,
    Owner,
    Reason,
    Stage,
    StageChanged,
)
from leadrelay_shared.delivery import envelope
from leadrelay_shared.uow import UnitOfWork as BaseUnitOfWork

from . import domain
from .config import RoutingConfig

WEBHOOK_EVENT = "lead.assigned"
ROUTED_STAGES = frozenset({Stage.MQL, Stage.SQL})


class Pointers(Protocol):
    async def lock(self, pool_id: str) -> int: ...
    async def set(self, pool_id: str, position: int, now: datetime) -> None: ...


class AssignmentStore(Protocol):
    async def add(self, *, assignment_id: uuid.UUID, lead_id: str, stage: str,
                  owner_id: str | None, team_id: str, strategy: str, decision: dict[str, Any],
                  config_version: str, cause_event_id: uuid.UUID, now: datetime) -> None: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    pointers: Pointers
    assignments: AssignmentStore

    async def scrub_webhooks(self, lead_id: str) -> None: ...


async def handle(event: Event, *, uow: UnitOfWork, config: RoutingConfig,
                 now: Callable[[], datetime]) -> None:
    if isinstance(event, LeadErased):
        await erase(event, uow)
        return
    if not isinstance(event, StageChanged) or event.to_stage not in ROUTED_STAGES:
        return
    async with uow:
        if not await uow.claim(event.event_id, event.event_type):
            return
        await _assign(event, uow, config, now())
        await uow.commit()


async def erase(event: LeadErased, uow: UnitOfWork) -> None:
    """Honour an erasure: the lead's copies in our outbox and webhook queue lose personal data
    (a webhook still waiting is then sent without it)."""
    async with uow:
        if not await uow.claim(event.event_id, event.event_type):
            return
        await uow.scrub_outbox(event.lead_id)
        await uow.scrub_webhooks(event.lead_id)
        await uow.commit()


async def _assign(event: StageChanged, uow: UnitOfWork, config: RoutingConfig,
                  at: datetime) -> None:
    team = config.team_for(event.to_stage)
    assignment_id = uuid.uuid5(event.event_id, "assignment")
    if team is None:
        decision_record: dict[str, Any] = {"reasons": [{"rule_id": "team.none",
                                           "message": f"no team takes {event.to_stage}"}]}
        await uow.assignments.add(
            assignment_id=assignment_id, lead_id=event.lead_id, stage=event.to_stage,
            owner_id=None, team_id="(none)", strategy="none", decision=decision_record,
            config_version=config.version, cause_event_id=event.event_id, now=at)
        return
    pointer = await uow.pointers.lock(team.id)
    decision = domain.round_robin(team, pointer, at)
    await uow.pointers.set(team.id, decision.pointer_after, at)
    await uow.assignments.add(
        assignment_id=assignment_id, lead_id=event.lead_id, stage=event.to_stage,
        owner_id=decision.rep.id if decision.rep else None, team_id=team.id,
        strategy=decision.strategy, decision=decision.as_record(), config_version=config.version,
        cause_event_id=event.event_id, now=at)
    if decision.rep is None:
        return
    assigned = LeadAssigned(
        lead_id=event.lead_id, occurred_at=at, assignment_id=assignment_id, stage=event.to_stage,
        owner=Owner(id=decision.rep.id, name=decision.rep.name, email=decision.rep.email),
        team_id=team.id, strategy=decision.strategy,
        reasons=(*event.reasons, *decision.reasons), config_version=config.version,
        lead=event.lead, cause_event_id=event.event_id)
    await uow.emit(assigned)
    await _enqueue_webhooks(assigned, uow, config)


async def _enqueue_webhooks(assigned: LeadAssigned, uow: UnitOfWork, config: RoutingConfig) -> None:
    data = {
        "assignment_id": str(assigned.assignment_id), "lead_id": assigned.lead_id,
        "stage": assigned.stage.value, "owner": assigned.owner.model_dump(),
        "team_id": assigned.team_id, "lead": assigned.lead.model_dump(mode="json"),
        "summary": summary(assigned.reasons),
        "reasons": [r.model_dump() for r in assigned.reasons],
    }
    for endpoint in config.endpoints().values():
        if endpoint.wants(WEBHOOK_EVENT):
            await uow.enqueue_webhook(
                delivery_id=f"msg_{uuid.uuid5(assigned.assignment_id, endpoint.id).hex}",
                endpoint_id=endpoint.id, url=endpoint.url, event_type=WEBHOOK_EVENT,
                lead_id=assigned.lead_id,
                payload=envelope(WEBHOOK_EVENT, assigned.occurred_at, data))


def summary(reasons: tuple[Reason, ...]) -> str:
    return "; ".join(r.message for r in reasons)
