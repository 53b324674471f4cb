"""What scoring's API takes and answers: the request and response models of its endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EraseIn(BaseModel):
    requested_by: str | None = Field(
        default=None, max_length=200, description="who asked (a ticket id, not the person's data)"
    )


class Erased(BaseModel):
    lead_id: str
    erased_at: datetime


class Contribution(BaseModel):
    rule_id: str
    points: int
    message: str


class EngagementNow(BaseModel):
    """The engagement score decayed to the moment of the request."""

    score: int
    at: datetime
    model_version: str
    contributions: list[Contribution]


class StageStep(BaseModel):
    from_stage: str | None
    to_stage: str
    actor: str
    at: datetime
    reasons: list[dict[str, Any]]
    model_version: str


class Pass(BaseModel):
    """One pass of the lead through the funnel (a new MQL starts the next)."""

    cycle: int
    stages: list[StageStep]


class Lead(BaseModel):
    lead_id: str
    stage: str | None
    stage_entered_at: datetime | None
    fit_score: int
    fit_grade: str
    engagement_score: int = Field(description="as stored when the lead was last scored")
    scored_at: datetime
    model_version: str
    engagement_now: EngagementNow
    cycle: int
    lead: dict[str, Any] = Field(description="the lead's snapshot (emptied by an erasure)")
    erased_at: datetime | None
    created_at: datetime
    passes: list[Pass]


class TimelineEntry(BaseModel):
    id: int
    at: datetime
    kind: str
    summary: str
    detail: dict[str, Any]
    event_id: uuid.UUID | None


class Timeline(BaseModel):
    lead_id: str
    entries: list[TimelineEntry]


class ModelSummary(BaseModel):
    version: str
    checksum: str
    description: str | None
    grades: dict[str, int]
    fit_rules: int
    engagement_rules: int
    engagement_half_life_days: float
    mql: dict[str, Any]
    fast_lanes: list[dict[str, Any]]
    timers: dict[str, Any]


class RescoredLead(BaseModel):
    """One lead at the window's end under the active model and under the candidate."""

    lead_id: str
    source: str
    campaign: str
    stage_before: str | None
    stage_after: str | None
    mql_before: bool = Field(description="became MQL within the window under the active model")
    mql_after: bool
    fit_before: int
    fit_after: int
    grade_before: str
    grade_after: str
    engagement_before: int
    engagement_after: int
    why_before: str = Field(description="the reasons of its last stage change")
    why_after: str


class MqlsBySource(BaseModel):
    source: str
    campaign: str
    leads: int
    mql_before: int
    mql_after: int
    mql_change: int


class GradeCount(BaseModel):
    grade: str
    before: int
    after: int


class ScoringSimulation(BaseModel):
    """What a candidate model would have made of a window of real leads."""

    active_version: str
    candidate_version: str
    window_from: datetime
    window_to: datetime
    leads_rescored: int
    leads_changed: int
    mql_before: int
    mql_after: int
    summary: list[str]
    by_source: list[MqlsBySource]
    grades: list[GradeCount]
    leads: list[RescoredLead] = Field(description="the changed leads, or all with leads=all")
