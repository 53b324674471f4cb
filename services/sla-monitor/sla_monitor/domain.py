"""Pure SLA rules: when a clock is due, what stops it, and the breach decision with reasons."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadrelay_shared.contracts import Reason


@dataclass(frozen=True)
class Policy:
    id: str
    first_touch: timedelta


@dataclass(frozen=True)
class Clock:
    id: uuid.UUID
    lead_id: str
    assignment_id: uuid.UUID
    owner_id: str
    team_id: str
    policy_id: str
    started_at: datetime
    due_at: datetime


def start_clock(*, clock_id: uuid.UUID, lead_id: str, assignment_id: uuid.UUID, owner_id: str,
                team_id: str, assigned_at: datetime, policy: Policy) -> Clock:
    return Clock(id=clock_id, lead_id=lead_id, assignment_id=assignment_id, owner_id=owner_id,
                 team_id=team_id, policy_id=policy.id, started_at=assigned_at,
                 due_at=assigned_at + policy.first_touch)


def stops_clock(clock: Clock, activity_at: datetime) -> bool:
    """A qualifying activity at or after the handoff and before the deadline works the lead."""
    return clock.started_at <= activity_at < clock.due_at


@dataclass(frozen=True)
class Breach:
    clock: Clock
    reasons: tuple[Reason, ...]


def check(clock: Clock, now: datetime) -> Breach | None:
    """The breach decision for an open clock at ``now``; None while time is left."""
    if now < clock.due_at:
        return None
    minutes = (clock.due_at - clock.started_at).total_seconds() / 60
    return Breach(clock=clock, reasons=(Reason(
        rule_id=f"sla.{clock.policy_id}.breached",
        message=f"no call, email or meeting logged by {clock.owner_id} within {minutes:g} "
                f"minutes of the handoff at {clock.started_at.isoformat()} "
                f"(due {clock.due_at.isoformat()})"),))
