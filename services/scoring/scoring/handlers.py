"""scoring's use cases. Each opens one unit of work and commits it; idempotent on event id.

Intake events arrive in batches (one Kafka poll of one partition): the batch is claimed, its
leads are locked and loaded once, every event is applied in offset order through the pure
``domain.apply``, and the results are written back together with their outbox rows. One event
is a batch of one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from opentelemetry.trace import Span

from leadrelay_shared import jsonio, tracing
from leadrelay_shared.contracts import (
    Event,
    LeadAssigned,
    LeadErased,
    LeadScored,
    RerouteRequested,
    Serialised,
    SlaBreached,
    Stage,
    StageChanged,
)
from leadrelay_shared.privacy import PERSONAL_FIELDS
from leadrelay_shared.uow import UnitOfWork as BaseUnitOfWork

from . import domain, timeline
from .config import ScoringModel
from .domain import Decision, LeadProfile, Transition
from .errors import LeadNotFound
from .timeline import StageRecord, TimelineEntry


class Leads(Protocol):
    async def get_many_for_update(self, lead_ids: Collection[str]) -> dict[str, LeadProfile]: ...
    async def save_many(
        self, profiles: Sequence[LeadProfile], *, model_version: str, now: datetime
    ) -> None: ...
    async def due_for_timers(
        self, due: dict[Stage, float], now: datetime, limit: int
    ) -> list[LeadProfile]: ...


class Timeline(Protocol):
    async def add_many(self, entries: Sequence[TimelineEntry]) -> None: ...
    async def scrub(self, lead_id: str) -> None: ...


class History(Protocol):
    async def add_many(self, records: Sequence[StageRecord]) -> None: ...


class UnitOfWork(BaseUnitOfWork, Protocol):
    # read-only members, so a unit of work whose repositories are these protocols' real
    # implementations (or the tests' fakes) conforms
    @property
    def leads(self) -> Leads: ...
    @property
    def timeline(self) -> Timeline: ...
    @property
    def history(self) -> History: ...


@dataclass
class Changes:
    """What a batch wrote, gathered in memory and flushed in a few statements."""

    model: ScoringModel
    at: datetime
    dirty: dict[str, LeadProfile] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    history: list[StageRecord] = field(default_factory=list)
    events: list[Event | Serialised] = field(default_factory=list)

    async def flush(self, uow: UnitOfWork) -> None:
        if self.dirty:
            await uow.leads.save_many(
                list(self.dirty.values()), model_version=self.model.version, now=self.at
            )
        if self.timeline:
            await uow.timeline.add_many(self.timeline)
        if self.history:
            await uow.history.add_many(self.history)
        if self.events:
            await uow.emit(self.events)


async def handle_batch(
    events: Sequence[Event], *, uow: UnitOfWork, model: ScoringModel, now: Callable[[], datetime]
) -> None:
    async with uow:
        fresh = await uow.claim(events)
        if fresh:
            changes = Changes(model=model, at=now())
            profiles = await uow.leads.get_many_for_update({e.lead_id for e in fresh})
            for event in fresh:
                with tracing.span(
                    "scoring.decide",
                    event.lead_id,
                    event.event_id,
                    **{"leadrelay.event_type": event.event_type},
                ) as span:
                    decision = domain.apply(profiles.get(event.lead_id), event, model, changes.at)
                    if span.is_recording():
                        _describe(span, decision)
                _record(event, decision, changes)
                if decision.profile is not None:
                    profiles[event.lead_id] = changes.dirty[event.lead_id] = decision.profile
            await changes.flush(uow)
        await uow.commit()


def _describe(span: Span, decision: Decision) -> None:
    """What a decision's span says of it: the scores, the stage and the moves made."""
    profile = decision.profile
    if profile is not None:
        span.set_attribute("leadrelay.score.fit", profile.fit_score)
        span.set_attribute("leadrelay.score.engagement", profile.engagement_score)
        if profile.stage is not None:
            span.set_attribute("leadrelay.stage", profile.stage.value)
    if decision.transitions:
        span.set_attribute(
            "leadrelay.transitions",
            [f"{t.from_stage or ''}->{t.to_stage}" for t in decision.transitions],
        )
    if decision.ignored is not None:
        span.set_attribute("leadrelay.ignored", decision.ignored.rule_id)


HANDOFF_EVENTS = (LeadAssigned, SlaBreached, RerouteRequested)


async def record_handoffs(events: Sequence[Event], *, uow: UnitOfWork) -> None:
    """What router and sla-monitor said about leads, put on their timelines beside what scoring
    decided: who each lead went to and why, its SLA breaches and the re-routes asked for. So one
    timeline tells the whole way of a lead. Nothing else changes; idempotent on event id."""
    async with uow:
        fresh = await uow.claim(events)
        if fresh:
            await uow.timeline.add_many([timeline.handoff_entry(e) for e in fresh])
        await uow.commit()


async def run_timers(
    *, uow: UnitOfWork, model: ScoringModel, now: datetime, limit: int = 500
) -> int:
    """Apply time's moves (recycle unaccepted MQLs, nurture stale inquiries) to due leads."""
    async with uow:
        due = await uow.leads.due_for_timers(domain.due_after(model), now, limit)
        changes = Changes(model=model, at=now)
        for profile in due:
            decision = domain.on_time(profile, model, now)
            if decision.profile is not None:
                changes.dirty[profile.lead_id] = decision.profile
                _record_moves(None, decision.profile, decision.transitions, changes)
        await changes.flush(uow)
        await uow.commit()
    return len(changes.dirty)


async def erase(
    lead_id: str, *, uow: UnitOfWork, now: datetime, requested_by: str | None
) -> datetime:
    """Erase a lead's personal data here and tell every service to do the same (GDPR art. 17)."""
    async with uow:
        profile = (await uow.leads.get_many_for_update([lead_id])).get(lead_id)
        if profile is None:
            raise LeadNotFound(lead_id)
        if profile.erased_at is not None:
            return profile.erased_at
        erased = domain.erase(profile, now)
        await uow.leads.save_many([erased], model_version="erasure", now=now)
        await uow.timeline.scrub(lead_id)
        await uow.scrub_outbox(lead_id)
        await uow.timeline.add_many(
            [
                TimelineEntry(
                    lead_id,
                    now,
                    "erased",
                    "personal data erased on request",
                    {"requested_by": requested_by, "erased_fields": list(PERSONAL_FIELDS)},
                    None,
                )
            ]
        )
        await uow.emit(
            [
                LeadErased(
                    lead_id=lead_id,
                    occurred_at=now,
                    erased_fields=PERSONAL_FIELDS,
                    requested_by=requested_by,
                )
            ]
        )
        await uow.commit()
    return now


# -- recording a decision ----------------------------------------------------------------------


def _record(event: Event, decision: Decision, c: Changes) -> None:
    if decision.ignored is not None and decision.ignored.rule_id == "erasure.predates":
        return  # the event carries personal data the lead asked us to forget
    c.timeline.append(timeline.event_entry(event))
    if decision.refused:
        c.timeline.append(
            TimelineEntry(
                event.lead_id,
                c.at,
                "transition_refused",
                f"refused: {decision.refused[0].message}",
                {"reasons": [r.model_dump() for r in decision.refused]},
                event.event_id,
            )
        )
    if decision.ignored is not None:
        c.timeline.append(
            TimelineEntry(
                event.lead_id,
                c.at,
                "no_change",
                decision.ignored.message,
                {"rule_id": decision.ignored.rule_id},
                event.event_id,
            )
        )
    p = decision.profile
    if p is None:
        return
    if decision.score_changed:
        _record_score(event, decision, p, c)
    _record_moves(event, p, decision.transitions, c)


def _record_score(event: Event, d: Decision, p: LeadProfile, c: Changes) -> None:
    # Each line as plain data once, and written as JSON once: the timeline and lead.scored both
    # carry them as they are (no model per line, see lead_scored).
    fit_lines = timeline.fit_lines_data(d.fit_parts)
    engagement_lines = timeline.engagement_lines_data(d.engagement_parts)
    fit_json, engagement_json = jsonio.dumps_str(fit_lines), jsonio.dumps_str(engagement_lines)
    version = c.model.version
    c.events.append(
        lead_scored(p, _json_concat(fit_json, engagement_json), version, c.at, event.event_id)
    )
    c.timeline.append(
        TimelineEntry(
            p.lead_id,
            c.at,
            "scored",
            f"fit {p.fit_score} (grade {p.fit_grade}), engagement {p.engagement_score}",
            {"fit": fit_lines, "engagement": engagement_lines, "model_version": version},
            event.event_id,
            f'{{"fit":{fit_json},"engagement":{engagement_json},"model_version":'
            f"{jsonio.dumps_str(version)}}}",
        )
    )


def _json_concat(left: str, right: str) -> str:
    """Two JSON arrays as the one array of their items."""
    if left == "[]":
        return right
    if right == "[]":
        return left
    return f"{left[:-1]},{right[1:]}"


def lead_scored(
    p: LeadProfile,
    lines_json: str,
    model_version: str,
    at: datetime,
    cause: uuid.UUID,
    event_id: uuid.UUID | None = None,
) -> Serialised:
    """``lead.scored`` written straight to the JSON ``LeadScored`` would write (fields in its
    order, values as pydantic-core writes them), without building and validating the model
    first; ``test_lead_scored_is_the_json_of_the_contract`` holds the two equal. The
    contributions come already written (``lines_json``, a JSON array)."""
    event_id = event_id or uuid.uuid4()
    head = jsonio.dumps_str(
        {
            "event_id": event_id,
            "lead_id": p.lead_id,
            "occurred_at": at,
            "schema_version": 1,
            "fit_score": p.fit_score,
            "engagement_score": p.engagement_score,
        }
    )
    tail = jsonio.dumps_str(
        {"model_version": model_version, "cause_event_id": cause, "fit_grade": p.fit_grade}
    )
    json = f'{head[:-1]},"contributions":{lines_json},{tail[1:]}'
    return Serialised(event_id, LeadScored.event_type, LeadScored.topic, p.lead_id, json)


def _record_moves(
    event: Event | None, p: LeadProfile, moves: tuple[Transition, ...], c: Changes
) -> None:
    cause = event.event_id if event else None
    cycle = p.cycle - sum(1 for m in moves if m.to_stage is Stage.MQL)
    for move in moves:
        cycle += move.to_stage is Stage.MQL
        reasons = [r.model_dump() for r in move.reasons]
        c.events.append(
            StageChanged(
                lead_id=p.lead_id,
                occurred_at=c.at,
                from_stage=move.from_stage,
                to_stage=move.to_stage,
                reasons=move.reasons,
                model_version=c.model.version,
                cause_event_id=cause or uuid.uuid4(),
                lead=p.snapshot,
                fit_score=p.fit_score,
                engagement_score=p.engagement_score,
                fit_grade=p.fit_grade,
                actor=move.actor,
                cycle=cycle,
            )
        )
        c.history.append(
            StageRecord(
                p.lead_id,
                cycle,
                move.from_stage,
                move.to_stage,
                move.actor,
                reasons,
                c.at,
                c.model.version,
                cause,
            )
        )
        c.timeline.append(
            TimelineEntry(
                p.lead_id,
                c.at,
                "stage_changed",
                f"{move.from_stage or 'new'} → {move.to_stage} ({move.actor})",
                {
                    "reasons": reasons,
                    "actor": move.actor,
                    "cycle": cycle,
                    "model_version": c.model.version,
                },
                cause,
            )
        )
