"""Pure SLA decisions: which policy, when each level is due, what works a lead, what each alert
says. Functions of plain data and an injected ``now``; every decision carries its reasons."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from leadrelay_shared.contracts import Reason, Stage

from .calendar import add_working, explain_due, format_duration, local_text
from .config import Policy, SlaConfig

QUEUE_PREFIX = "queue:"
ESCALATING = ("warning", "breach", "escalation", "reroute")  # in the order they fire
SEVERITY = {
    "warning": "warning",
    "breach": "error",
    "escalation": "critical",
    "reroute": "critical",
}
TERMINAL_FEEDBACK = frozenset({"rejected", "disqualified", "won", "lost"})
CLOSING_STAGES = frozenset(
    {Stage.RECYCLED, Stage.NURTURE, Stage.DISQUALIFIED, Stage.WON, Stage.LOST}
)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str | None = None


@dataclass(frozen=True)
class Handoff:
    """The facts a policy is chosen on, from a ``lead.assigned`` (or a stage change to SAL)."""

    lead_id: str
    assignment_id: uuid.UUID
    stage: Stage
    owner: Person
    team_id: str
    at: datetime
    owner_zone: str | None = None
    manager: Person | None = None
    segment: str | None = None
    fit_grade: str | None = None
    fit_score: int | None = None
    engagement_score: int | None = None
    reroutes: int = 0  # re-routes sla-monitor asked for in a row, unworked, that led here


@dataclass(frozen=True)
class Clock:
    id: uuid.UUID
    lead_id: str
    assignment_id: uuid.UUID
    stage: Stage
    phase: int  # 0: first touch; n: the n-th follow-up
    owner: Person
    team_id: str
    manager: Person | None
    policy_id: str
    policy_version: str
    zone: str
    started_at: datetime
    deadline: timedelta  # working time allowed
    due_at: datetime
    due_text: str
    warn_at: datetime | None = None
    escalate_at: datetime | None = None
    reroute_at: datetime | None = None
    status: str = "open"  # open, worked, reassigned, closed
    next_level: str | None = None
    next_at: datetime | None = None
    last_level: str | None = None
    breached_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    facts: Handoff | None = None

    @property
    def what(self) -> str:
        return "first-touch" if self.phase == 0 else f"follow-up {self.phase}"

    def level_at(self, level: str) -> datetime | None:
        return {
            "warning": self.warn_at,
            "breach": self.due_at,
            "escalation": self.escalate_at,
            "reroute": self.reroute_at,
        }.get(level)


@dataclass(frozen=True)
class Touch:
    """Something sales did: an activity logged, or feedback on the lead."""

    event_id: uuid.UUID
    lead_id: str
    kind: str  # "activity" or "feedback"
    type: str  # call/email/meeting, or accepted/rejected/...
    actor_id: str | None
    at: datetime


@dataclass(frozen=True)
class Alert:
    id: uuid.UUID
    clock: Clock
    level: str
    scheduled_at: datetime
    fired_at: datetime
    reasons: tuple[Reason, ...]

    @property
    def summary(self) -> str:
        return self.reasons[0].message


def _matches(policy: Policy, h: Handoff) -> str | None:
    """Why a policy does not cover a handoff, or None when it does."""
    w = policy.when
    if w.stages and h.stage not in w.stages:
        return f"stage {h.stage.value} not in {[s.value for s in w.stages]}"
    if w.teams and h.team_id not in w.teams:
        return f"team {h.team_id} not in {list(w.teams)}"
    if w.segments and h.segment not in w.segments:
        return f"segment {h.segment} not in {list(w.segments)}"
    if w.fit_grades and h.fit_grade not in w.fit_grades:
        return f"fit grade {h.fit_grade} not in {list(w.fit_grades)}"
    if w.min_fit is not None and (h.fit_score is None or h.fit_score < w.min_fit):
        return f"fit {h.fit_score} below {w.min_fit}"
    if w.min_engagement is not None and (
        h.engagement_score is None or h.engagement_score < w.min_engagement
    ):
        return f"engagement {h.engagement_score} below {w.min_engagement}"
    if w.max_engagement is not None and (
        h.engagement_score is not None and h.engagement_score > w.max_engagement
    ):
        return f"engagement {h.engagement_score} above {w.max_engagement}"
    return None


def select(config: SlaConfig, h: Handoff) -> tuple[Policy | None, tuple[Reason, ...]]:
    """The first policy, in file order, that covers the handoff; the reasons say why."""
    skipped: list[Reason] = []
    for policy in config.policies:
        why_not = _matches(policy, h)
        if why_not is None:
            return policy, (
                *skipped,
                Reason(
                    rule_id=f"sla.policy.{policy.id}",
                    message=f"policy {policy.id} applies to this {h.stage.value} handoff "
                    f"(config {config.version})",
                ),
            )
        skipped.append(
            Reason(
                rule_id=f"sla.policy.{policy.id}.skipped",
                message=f"policy {policy.id} skipped: {why_not}",
            )
        )
    return None, (
        *skipped,
        Reason(
            rule_id="sla.policy.none", message="no SLA policy covers this handoff; no clock started"
        ),
    )


def clock_id(assignment_id: uuid.UUID, stage: Stage, phase: int) -> uuid.UUID:
    return uuid.uuid5(assignment_id, f"clock:{stage.value}:{phase}")


def start_clock(
    h: Handoff, policy: Policy, config_version: str, *, phase: int = 0, at: datetime | None = None
) -> Clock:
    """A clock for ``phase`` of a handoff, with every level's instant worked out now."""
    start = at or h.at
    zone = policy.zone_for(h.owner_zone)
    cal, deadline = policy.calendar, policy.deadline(phase)
    due = add_working(cal, zone, start, deadline)
    warn = (
        add_working(cal, zone, start, deadline * policy.warning_at)
        if policy.warning_at is not None
        else None
    )
    escalate = (
        add_working(cal, zone, due, policy.escalate_after)
        if policy.escalate_after is not None
        else None
    )
    reroute = (
        add_working(cal, zone, due, policy.reroute_after)
        if policy.reroute_after is not None and h.reroutes < policy.max_reroutes
        else None
    )
    clock = Clock(
        id=clock_id(h.assignment_id, h.stage, phase),
        lead_id=h.lead_id,
        assignment_id=h.assignment_id,
        stage=h.stage,
        phase=phase,
        owner=h.owner,
        team_id=h.team_id,
        manager=h.manager,
        policy_id=policy.id,
        policy_version=config_version,
        zone=zone.key,
        started_at=start,
        deadline=deadline,
        due_at=due,
        due_text=explain_due(cal, zone, start, due, deadline),
        warn_at=warn,
        escalate_at=escalate,
        reroute_at=reroute,
        facts=h,
    )
    level, when = next_level(clock, None) or (None, None)
    return replace(clock, next_level=level, next_at=when)


def reroute_event_id(clock_id: uuid.UUID) -> uuid.UUID:
    """The id of the ``reroute.requested`` a clock's re-route level emits (one per clock)."""
    return uuid.uuid5(clock_id, "reroute.requested")


def next_level(clock: Clock, after: str | None) -> tuple[str, datetime] | None:
    """The level that fires after ``after`` (None: the first), and when."""
    start = 0 if after is None else ESCALATING.index(after) + 1
    for level in ESCALATING[start:]:
        when = clock.level_at(level)
        if when is not None:
            return level, when
    return None


def works(clock: Clock, touch: Touch) -> Reason | None:
    """Whether a touch works the lead for this clock, and why; None when it does not."""
    if touch.at < clock.started_at:
        return None
    after = format_duration(touch.at - clock.started_at)
    if touch.kind == "activity":
        actor = (touch.actor_id or "").strip().casefold()
        owner_ids = {clock.owner.id.casefold(), (clock.owner.email or "").casefold()} - {""}
        if not clock.owner.id.startswith(QUEUE_PREFIX) and actor not in owner_ids:
            return None
        return Reason(
            rule_id=f"sla.{clock.policy_id}.worked",
            message=f"{touch.type} logged by {touch.actor_id or 'someone'} "
            f"{after} after the handoff",
        )
    if clock.phase > 0 or (clock.stage == Stage.SAL and touch.type == "accepted"):
        return None  # follow-ups need a touch by the rep; SAL starts at the accept itself
    return Reason(
        rule_id=f"sla.{clock.policy_id}.worked",
        message=f"sales feedback '{touch.type}' {after} after the handoff",
    )


def closes(touch: Touch) -> bool:
    """Feedback that ends the lead's handoff: no more clocks after it."""
    return touch.kind == "feedback" and touch.type in TERMINAL_FEEDBACK


def follow_up(
    clock: Clock, policy: Policy | None, touch: Touch, config_version: str
) -> Clock | None:
    """The next follow-up clock after a worked one, if the policy asks for one."""
    if (
        policy is None
        or clock.facts is None
        or closes(touch)
        or clock.phase >= len(policy.follow_ups)
    ):
        return None
    facts = replace(clock.facts, owner=clock.owner, manager=clock.manager, reroutes=0)
    return start_clock(facts, policy, config_version, phase=clock.phase + 1, at=touch.at)


def fire(clock: Clock, now: datetime) -> tuple[Alert, Clock]:
    """The alert for the clock's next level, and the clock moved on to the level after."""
    assert clock.next_level is not None and clock.next_at is not None
    level, scheduled = clock.next_level, clock.next_at
    zone = ZoneInfo(clock.zone)
    owner = f"{clock.owner.name} ({clock.owner.id})"
    over = format_duration(max(timedelta(0), now - clock.due_at))
    if level == "warning":
        left = format_duration(max(timedelta(0), clock.due_at - now))
        message = (
            f"{clock.what} SLA ({clock.policy_id}) nearly used: {owner} has not worked "
            f"lead {clock.lead_id}; {left} left, {clock.due_text}"
        )
    elif level == "breach":
        message = (
            f"{clock.what} SLA ({clock.policy_id}) breached: no call, email or meeting "
            f"by {owner} within {format_duration(clock.deadline)} of working time; "
            f"{clock.due_text}"
        )
    elif level == "escalation":
        to = (
            f"{clock.manager.name} ({clock.manager.id}), manager of {clock.owner.name}"
            if clock.manager
            else f"ops: {clock.owner.name} has no manager configured"
        )
        message = (
            f"escalated to {to}: lead {clock.lead_id} still unworked {over} after its "
            f"{clock.what} deadline ({local_text(clock.due_at, zone)})"
        )
        rerouted = clock.facts.reroutes if clock.facts else 0
        if rerouted and clock.reroute_at is None:
            message += (
                f"; not re-routed again: re-routed {rerouted} time(s) in a row already "
                "without being worked"
            )
    else:
        message = (
            f"re-route requested: lead {clock.lead_id} unworked {over} after its "
            f"{clock.what} deadline; router assigns the next eligible rep, "
            f"excluding {owner}"
        )
    alert = Alert(
        id=uuid.uuid5(clock.id, level),
        clock=clock,
        level=level,
        scheduled_at=scheduled,
        fired_at=now,
        reasons=(Reason(rule_id=f"sla.{clock.policy_id}.{level}", message=message),),
    )
    step = next_level(clock, level)
    moved = replace(
        clock,
        last_level=level,
        next_level=step[0] if step else None,
        next_at=step[1] if step else None,
        breached_at=now if level == "breach" else clock.breached_at,
    )
    return alert, moved


def end(clock: Clock, status: str, at: datetime, why: Reason) -> tuple[Clock, Alert | None]:
    """Stop a clock (worked, reassigned, closed); a resolve notice if it had alerted."""
    ended = replace(
        clock, status=status, ended_at=at, outcome=why.message, next_level=None, next_at=None
    )
    if clock.last_level is None:
        return ended, None
    late = (
        f", {format_duration(at - clock.due_at)} after the deadline"
        if at > clock.due_at
        else ", before the deadline"
    )
    message = (
        f"resolved: lead {clock.lead_id} ({clock.what} SLA {clock.policy_id}, "
        f"last alert {clock.last_level}) is {status}{late}: {why.message}"
    )
    return ended, Alert(
        id=uuid.uuid5(clock.id, "resolved"),
        clock=ended,
        level="resolved",
        scheduled_at=at,
        fired_at=at,
        reasons=(Reason(rule_id=f"sla.{clock.policy_id}.resolved", message=message), why),
    )
