"""What router's API takes and answers: the request and response models of its endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class RerouteBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, examples=["rep is on sick leave"])
    requested_by: str = Field(default="operator", min_length=1, max_length=200)
    assignment_id: uuid.UUID | None = Field(
        default=None, description="Only re-route if this is still the current assignment."
    )


class Assignment(BaseModel):
    """The decision record of one assignment or re-route."""

    id: uuid.UUID
    lead_id: str
    kind: str = Field(description="assign or reroute")
    stage: str
    owner_id: str | None
    queue: str | None
    team_id: str
    strategy: str
    previous_owner_id: str | None
    config_version: str
    cause_event_id: uuid.UUID
    created_at: datetime
    decision: dict[str, Any] = Field(
        description="account, territory, team, candidates, skipped reps and why, the strategy's "
        "pointer before and after, reasons and a one-line summary"
    )
    lead: dict[str, Any] | None


class AssignmentSummary(BaseModel):
    id: uuid.UUID
    kind: str
    stage: str
    owner_id: str | None
    queue: str | None
    team_id: str
    strategy: str
    previous_owner_id: str | None
    config_version: str
    created_at: datetime
    summary: str | None
    skipped: list[dict[str, Any]] | None


class LeadAssignments(BaseModel):
    lead_id: str
    owner: str | None = Field(description="the current owner")
    items: list[AssignmentSummary]


class RoutingConfigAnswer(BaseModel):
    version: str
    document: dict[str, Any]


class ConfigVersion(BaseModel):
    version: str
    checksum: str
    source: str
    created_at: datetime
    activated_at: datetime


class ConfigVersions(BaseModel):
    items: list[ConfigVersion]


class RepState(BaseModel):
    rep_id: str
    name: str
    state: str = Field(
        description="available, or why not: excluded, deactivated, paused, out_of_office, "
        "off_hours, capacity_day or capacity_week (the first that holds)"
    )
    reason: str
    paused: bool
    active: bool
    out_of_office: list[dict[str, str]]
    today: int = Field(description="leads assigned today, in the rep's time zone")
    day_cap: int | None
    this_week: int
    week_cap: int | None
    zone: str
    teams: list[str]


class RepStates(BaseModel):
    version: str
    at: datetime
    items: list[RepState]


class ConfigDiff(BaseModel):
    from_version: str
    to_version: str
    diff: dict[str, Any] = Field(description="per section: ids added, removed and changed")


class ConfigCheck(BaseModel):
    valid: bool
    version: str
    diff: dict[str, Any] = Field(description="what it would change, per section")


class ConfigChange(BaseModel):
    version: str
    previous: str
    diff: dict[str, Any]
    imported: int | None = Field(default=None, description="accounts read from the CSV")


class SimulatedLead(BaseModel):
    """One replayed assignment: the owner it got and the owner the candidate gives it."""

    lead_id: str
    assignment_id: uuid.UUID
    routed_at: datetime
    kind: str
    stage: str
    owner_before: str | None
    team_before: str | None
    territory_before: str | None
    queue_before: str | None
    owner_after: str | None
    team_after: str | None
    territory_after: str | None
    queue_after: str | None
    strategy_after: str
    changed: bool
    why_after: str


class SimulatedRep(BaseModel):
    rep_id: str
    before: int
    after: int
    change: int
    capacity_before: int = Field(description="leads the rep was passed over for, at capacity")
    capacity_after: int


class SimulatedPool(BaseModel):
    team_id: str
    strategy: str | None = Field(description="the pool's strategy in the candidate")
    spread_before: float | None = Field(
        description="most assignments of a member less the fewest, per unit of weight"
    )
    spread_after: float | None
    assigned_after: dict[str, int]


class Simulation(BaseModel):
    """What a candidate configuration would have done with a window of real leads."""

    candidate_version: str
    routed_under: list[str] = Field(description="the versions the window was really routed under")
    window_from: datetime
    window_to: datetime
    leads_replayed: int
    leads_changed: int
    queued_before: int = Field(description="leads that went to a queue or found nobody")
    queued_after: int
    summary: list[str]
    reps: list[SimulatedRep]
    pools: list[SimulatedPool]
    leads: list[SimulatedLead] = Field(description="the changed leads, or all with leads=all")
