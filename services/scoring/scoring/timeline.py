"""The lead's story as scoring tells it: timeline entries and stage history rows, made from
events and decisions as plain data (the read model behind ``GET /v1/leads/{id}/timeline``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay_shared.contracts import (
    ActivityLogged,
    EngagementRecorded,
    Event,
    FeedbackReceived,
    FormSubmitted,
    LeadAssigned,
    RerouteRequested,
    SlaBreached,
    Stage,
)

from .domain import EngagementLine, Part


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    lead_id: str
    at: datetime
    kind: str
    summary: str
    detail: dict[str, Any]
    event_id: uuid.UUID | None
    detail_json: str | None = None  # ``detail`` already written as JSON, when it was at hand


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One row of the lead's funnel history: every pass, every stage, who moved it and why."""

    lead_id: str
    cycle: int
    from_stage: Stage | None
    to_stage: Stage
    actor: str
    reasons: list[dict[str, str]]
    at: datetime
    model_version: str
    cause_event_id: uuid.UUID | None


def handoff_entry(event: Event) -> TimelineEntry:
    """The timeline's entry for a handoff event (no personal data of the lead: the owner is a
    rep, the reasons are rules)."""
    if isinstance(event, LeadAssigned):
        o = event.owner
        verb = "re-routed" if event.reassignment else "assigned"
        summary = f"{verb} to {o.name} ({o.id}), team {event.team_id}"
        if event.summary:
            summary += f": {event.summary}"
        detail: dict[str, Any] = {
            "assignment_id": str(event.assignment_id),
            "owner_id": o.id,
            "owner_name": o.name,
            "team_id": event.team_id,
            "strategy": event.strategy,
            "queue": event.queue,
            "account_id": event.account_id,
            "territory": event.territory,
            "previous_owner_id": event.previous_owner_id,
            "stage": event.stage.value,
            "config_version": event.config_version,
            "reasons": [r.model_dump() for r in event.reasons],
        }
        return TimelineEntry(
            event.lead_id,
            event.occurred_at,
            "reassigned" if event.reassignment else "assigned",
            summary,
            detail,
            event.event_id,
        )
    if isinstance(event, SlaBreached):
        why = event.reasons[0].message if event.reasons else f"SLA {event.policy_id} breached"
        return TimelineEntry(
            event.lead_id,
            event.occurred_at,
            "sla_breached",
            why,
            {
                "clock_id": str(event.clock_id),
                "assignment_id": str(event.assignment_id),
                "owner_id": event.owner_id,
                "team_id": event.team_id,
                "policy_id": event.policy_id,
                "due_at": event.due_at.isoformat(),
                "reasons": [r.model_dump() for r in event.reasons],
            },
            event.event_id,
        )
    assert isinstance(event, RerouteRequested)
    return TimelineEntry(
        event.lead_id,
        event.occurred_at,
        "reroute_requested",
        f"re-route requested by {event.requested_by}: {event.reason}",
        {
            "assignment_id": str(event.assignment_id) if event.assignment_id else None,
            "requested_by": event.requested_by,
        },
        event.event_id,
    )


def event_entry(event: Event) -> TimelineEntry:
    """An intake event as the timeline keeps it: with what scoring needs to decide on it again
    (the what-if replays these), the lead's snapshot aside."""
    kind, summary = "event", event.event_type
    detail: dict[str, Any] = {}
    if isinstance(event, FormSubmitted):
        kind, summary = "form_submitted", f"form fill from {event.source_system}"
        detail = {
            "page_url": event.page_url,
            "utm": event.utm,
            "source_system": event.source_system,
        }
    elif isinstance(event, EngagementRecorded):
        kind = "engagement"
        summary = event.engagement_type.replace("_", " ")
        detail = {
            "engagement_type": event.engagement_type,
            "url": event.url,
            "campaign": event.campaign,
            "properties": event.properties,
        }
    elif isinstance(event, ActivityLogged):
        kind, summary = "activity", f"{event.activity_type} logged by sales"
        detail = {"actor_id": event.actor_id, "subject": event.subject}
    elif isinstance(event, FeedbackReceived):
        kind = "feedback"
        code = f" ({event.reason_code.replace('_', ' ')})" if event.reason_code else ""
        summary = f"sales feedback: {event.feedback}{code}"
        detail = {
            "feedback": event.feedback,
            "actor_id": event.actor_id,
            "reason_code": event.reason_code,
            "note": event.note,
            "opportunity_id": event.opportunity_id,
            "amount": event.amount,
            "currency": event.currency,
        }
    return TimelineEntry(event.lead_id, event.occurred_at, kind, summary, detail, event.event_id)


def fit_lines_data(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    """The fit explanation as plain data, as ``lead.scored`` and the timeline carry it. A
    fit's lines share their cause, so its id is written as text once."""
    causes: dict[object, str | None] = {}
    out = []
    for x in parts:
        cause = causes.get(x.event_id, "")
        if cause == "":
            cause = causes[x.event_id] = str(x.event_id) if x.event_id else None
        out.append(
            {"rule_id": x.rule_id, "points": x.points, "message": x.message, "event_id": cause}
        )
    return out


def engagement_lines_data(lines: tuple[EngagementLine, ...]) -> list[dict[str, Any]]:
    """The engagement explanation as plain data (as ``fit_lines_data``)."""
    return [
        {
            "rule_id": x.rule_id,
            "points": x.points,
            "message": x.message,
            "event_id": x.event_id or None,
        }
        for x in lines
    ]
