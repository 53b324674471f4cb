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


class ConfigCheck(BaseModel):
    valid: bool
    version: str
    diff: dict[str, Any] = Field(description="what it would change, per section")


class ConfigChange(BaseModel):
    version: str
    previous: str
    diff: dict[str, Any]
    imported: int | None = Field(default=None, description="accounts read from the CSV")
