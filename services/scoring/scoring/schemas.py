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
