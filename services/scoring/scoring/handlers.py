"""scoring's use cases: one transaction per event, idempotent on event id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from leadrelay_shared.contracts import (
    ActivityLogged,
    Event,
    FormSubmitted,
    LeadScored,
    StageChanged,
)
from leadrelay_shared.uow import UnitOfWork as BaseUnitOfWork

from . import domain
from .domain import LeadProfile, ScoringModel


class Leads(Protocol):
    async def get_for_update(self, lead_id: str) -> LeadProfile | None: ...
    async def save(self, profile: LeadProfile, *, model_version: str, now: datetime) -> None: ...


class Timeline(Protocol):
    async def add(self, lead_id: str, *, at: datetime, kind: str, summary: str,
                  detail: dict[str, Any], event_id: uuid.UUID | None) -> None: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    leads: Leads
    timeline: Timeline


async def handle(event: Event, *, uow: UnitOfWork, model: ScoringModel,
                 now: Callable[[], datetime]) -> None:
    async with uow:
        if not await uow.claim(event.event_id, event.event_type):
            return
        at = now()
        if isinstance(event, FormSubmitted):
            await _on_form(event, uow, model, at)
        elif isinstance(event, ActivityLogged):
            await uow.timeline.add(event.lead_id, at=event.occurred_at, kind="activity",
                                   summary=f"{event.activity_type} logged by sales",
                                   detail={"actor_id": event.actor_id}, event_id=event.event_id)
        await uow.commit()


async def _on_form(event: FormSubmitted, uow: UnitOfWork, model: ScoringModel,
                   at: datetime) -> None:
    profile = await uow.leads.get_for_update(event.lead_id)
    decision = domain.on_form(profile, event, model, at)
    await uow.leads.save(decision.profile, model_version=model.version, now=at)
    await uow.timeline.add(event.lead_id, at=event.occurred_at, kind="form_submitted",
                           summary=f"form fill from {event.source_system}",
                           detail={"page_url": event.page_url, "utm": event.utm},
                           event_id=event.event_id)
    if decision.score_changed:
        await _record_score(event, decision, uow, model, at)
    for move in decision.transitions:
        await _record_transition(event, move, decision.profile, uow, model, at)


async def _record_score(event: FormSubmitted, decision: domain.ScoringDecision, uow: UnitOfWork,
                        model: ScoringModel, at: datetime) -> None:
    p = decision.profile
    await uow.emit(LeadScored(
        lead_id=p.lead_id, occurred_at=at, fit_score=p.fit_score,
        engagement_score=p.engagement_score, contributions=decision.contributions,
        model_version=model.version, cause_event_id=event.event_id))
    await uow.timeline.add(p.lead_id, at=at, kind="scored",
                           summary=f"fit {p.fit_score}, engagement {p.engagement_score}",
                           detail={"contributions": [c.model_dump(mode="json")
                                                     for c in decision.contributions],
                                   "model_version": model.version}, event_id=event.event_id)


async def _record_transition(event: FormSubmitted, move: domain.Transition, profile: LeadProfile,
                             uow: UnitOfWork, model: ScoringModel, at: datetime) -> None:
    await uow.emit(StageChanged(
        lead_id=profile.lead_id, occurred_at=at, from_stage=move.from_stage,
        to_stage=move.to_stage, reasons=move.reasons, model_version=model.version,
        cause_event_id=event.event_id, lead=profile.snapshot,
        fit_score=profile.fit_score, engagement_score=profile.engagement_score))
    await uow.timeline.add(profile.lead_id, at=at, kind="stage_changed",
                           summary=f"{move.from_stage or 'new'} → {move.to_stage}",
                           detail={"reasons": [r.model_dump() for r in move.reasons],
                                   "model_version": model.version}, event_id=event.event_id)
