"""What sla-monitor's API answers: the response models of its operator endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Clock(BaseModel):
    """One SLA clock: the handoff it watches, its policy, its deadline and why, its outcome."""

    id: uuid.UUID
    lead_id: str
    assignment_id: uuid.UUID
    stage: str
    phase: int = Field(description="0 for the first touch; follow-up clocks count up")
    owner_id: str
    owner_name: str | None
    owner_email: str | None
    team_id: str
    manager: dict[str, Any] | None
    policy_id: str
    policy_version: str
    zone: str
    status: str = Field(description="open, worked, or ended by a reassignment")
    started_at: datetime
    deadline_seconds: float | None = Field(description="working seconds allowed")
    due_at: datetime
    due_text: str = Field(description="why the deadline falls where it does")
    warn_at: datetime | None
    escalate_at: datetime | None
    reroute_at: datetime | None
    next_level: str | None
    next_at: datetime | None
    last_level: str | None
    breached_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    seconds_left: float | None = Field(default=None, description="open clocks only")
    overdue: bool | None = Field(default=None, description="open clocks only")


class Clocks(BaseModel):
    items: list[Clock]


class Alert(BaseModel):
    id: uuid.UUID
    clock_id: uuid.UUID
    lead_id: str
    level: str
    policy_id: str
    team_id: str
    owner_id: str
    scheduled_at: datetime
    fired_at: datetime
    summary: str
    reasons: list[dict[str, Any]]


class Alerts(BaseModel):
    items: list[Alert]


class Compliance(BaseModel):
    """First-touch compliance of one rep, team or policy (the key named by ``by``)."""

    rep: str | None = None
    team: str | None = None
    policy: str | None = None
    clocks: int
    measured: int = Field(description="clocks whose outcome is known: worked or past due")
    within_sla: int
    breached: int
    open: int
    pct_within_sla: float | None
    median_first_touch_s: float | None


class ComplianceReport(BaseModel):
    by: str
    since: datetime | None
    until: datetime | None
    items: list[Compliance]


class LeadSla(BaseModel):
    lead_id: str
    clocks: list[Clock]
    alerts: list[Alert]


class Channel(BaseModel):
    id: str
    format: str
    levels: list[str]
    enabled: bool


class PolicyVersion(BaseModel):
    version: str
    checksum: str
    first_loaded_at: datetime
    last_activated_at: datetime


class Policies(BaseModel):
    version: str
    policies: list[dict[str, Any]]
    calendars: list[dict[str, Any]]
    channels: list[Channel]
    versions: list[PolicyVersion]
