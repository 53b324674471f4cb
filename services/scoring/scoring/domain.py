"""Pure scoring rules and the stage machine. No I/O, no clock: ``now`` is always passed in."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from leadrelay_shared.contracts import FormSubmitted, LeadSnapshot, Reason, ScoreContribution, Stage

# Who may move a lead from one stage to another. Anything else is rejected with a reason.
ALLOWED: dict[Stage | None, frozenset[Stage]] = {
    None: frozenset({Stage.INQUIRY}),
    Stage.INQUIRY: frozenset({Stage.MQL, Stage.NURTURE, Stage.DISQUALIFIED}),
    Stage.MQL: frozenset({Stage.SAL, Stage.RECYCLED, Stage.DISQUALIFIED, Stage.NURTURE}),
    Stage.SAL: frozenset({Stage.SQL, Stage.RECYCLED, Stage.DISQUALIFIED}),
    Stage.SQL: frozenset({Stage.OPPORTUNITY, Stage.RECYCLED, Stage.DISQUALIFIED, Stage.LOST}),
    Stage.OPPORTUNITY: frozenset({Stage.WON, Stage.LOST}),
    Stage.NURTURE: frozenset({Stage.MQL, Stage.DISQUALIFIED}),
    Stage.RECYCLED: frozenset({Stage.MQL, Stage.NURTURE, Stage.DISQUALIFIED}),
    Stage.LOST: frozenset({Stage.RECYCLED, Stage.NURTURE}),
    Stage.WON: frozenset(),
    Stage.DISQUALIFIED: frozenset(),
}


class TransitionRejected(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


@dataclass(frozen=True)
class Transition:
    from_stage: Stage | None
    to_stage: Stage
    reasons: tuple[Reason, ...]


def transition(current: Stage | None, target: Stage, reasons: tuple[Reason, ...]) -> Transition:
    """A checked stage change; a forbidden one raises ``TransitionRejected``, never applies."""
    if target not in ALLOWED[current]:
        raise TransitionRejected(Reason(
            rule_id="stage.forbidden",
            message=f"a lead cannot move from {current or 'nothing'} to {target}"))
    return Transition(current, target, reasons)


@dataclass(frozen=True)
class ScoringModel:
    """The built-in model; a versioned YAML model replaces it (issue #4)."""

    version: str = "builtin-1"
    business_email_points: int = 20
    title_points: int = 20
    senior_title_points: int = 15
    company_points: int = 10
    form_fill_points: int = 10
    form_fill_cap: int = 30
    mql_fit_threshold: int = 40
    senior_keywords: tuple[str, ...] = (
        "chief", "vp", "vice president", "head", "director", "founder", "owner",
        "ceo", "cto", "cfo", "cio", "cmo", "coo", "president", "partner",
    )


@dataclass(frozen=True)
class LeadProfile:
    lead_id: str
    snapshot: LeadSnapshot
    stage: Stage | None = None
    fit_score: int = 0
    engagement_score: int = 0
    form_fills: int = 0
    stage_entered_at: datetime | None = None


@dataclass(frozen=True)
class ScoringDecision:
    profile: LeadProfile
    contributions: tuple[ScoreContribution, ...]
    transitions: tuple[Transition, ...] = field(default=())

    @property
    def score_changed(self) -> bool:
        return bool(self.contributions)


def merge_snapshot(old: LeadSnapshot, new: LeadSnapshot) -> LeadSnapshot:
    """Newer non-empty values win; nothing known is forgotten because a later form omitted it."""
    updates = {k: v for k, v in new.model_dump().items() if v not in (None, "")}
    return old.model_copy(update=updates)


def is_senior(title: str, keywords: tuple[str, ...]) -> bool:
    lowered = title.lower()
    words = set(re.split(r"[^a-z]+", lowered))
    return any((kw in lowered) if " " in kw else (kw in words) for kw in keywords)


def fit(snapshot: LeadSnapshot, model: ScoringModel, event_id: uuid.UUID | None
        ) -> tuple[int, tuple[ScoreContribution, ...]]:
    """Who they are: points for a business domain, a job title, seniority and a company."""
    parts: list[ScoreContribution] = []
    if snapshot.email_domain and not snapshot.is_free_email:
        parts.append(ScoreContribution(rule_id="fit.business_email", points=model.business_email_points,
                                       message=f"business email domain {snapshot.email_domain}",
                                       event_id=event_id))
    if snapshot.title:
        parts.append(ScoreContribution(rule_id="fit.job_title", points=model.title_points,
                                       message="job title given", event_id=event_id))
        if is_senior(snapshot.title, model.senior_keywords):
            parts.append(ScoreContribution(rule_id="fit.seniority", points=model.senior_title_points,
                                           message="senior title", event_id=event_id))
    if snapshot.company:
        parts.append(ScoreContribution(rule_id="fit.company", points=model.company_points,
                                       message="company given", event_id=event_id))
    return sum(p.points for p in parts), tuple(parts)


def on_form(profile: LeadProfile | None, event: FormSubmitted, model: ScoringModel,
            now: datetime) -> ScoringDecision:
    """Apply a form fill: merge identity, rescore fit, add engagement, move stage if earned."""
    base = profile or LeadProfile(lead_id=event.lead_id, snapshot=event.lead)
    snapshot = merge_snapshot(base.snapshot, event.lead) if profile else event.lead
    fit_points, fit_parts = fit(snapshot, model, event.event_id)
    fills = base.form_fills + 1
    engagement = min(fills * model.form_fill_points, model.form_fill_cap)
    parts = list(fit_parts)
    if engagement > base.engagement_score:
        parts.append(ScoreContribution(rule_id="engagement.form_fill",
                                       points=engagement - base.engagement_score,
                                       message=f"form fill #{fills} (capped at {model.form_fill_cap})",
                                       event_id=event.event_id))
    updated = replace(base, snapshot=snapshot, fit_score=fit_points, engagement_score=engagement,
                      form_fills=fills)
    transitions = _stage_moves(updated, model, fit_parts)
    if transitions:
        updated = replace(updated, stage=transitions[-1].to_stage, stage_entered_at=now)
    changed = (fit_points, engagement) != (base.fit_score, base.engagement_score) or profile is None
    return ScoringDecision(profile=updated, contributions=tuple(parts) if changed else (),
                           transitions=transitions)


def _stage_moves(profile: LeadProfile, model: ScoringModel,
                 fit_parts: tuple[ScoreContribution, ...]) -> tuple[Transition, ...]:
    moves: list[Transition] = []
    stage = profile.stage
    if stage is None:
        moves.append(transition(None, Stage.INQUIRY, (Reason(
            rule_id="stage.first_touch", message="first known contact: a form fill"),)))
        stage = Stage.INQUIRY
    if stage in (Stage.INQUIRY, Stage.NURTURE, Stage.RECYCLED) and \
            profile.fit_score >= model.mql_fit_threshold:
        why = ", ".join(p.message for p in fit_parts)
        moves.append(transition(stage, Stage.MQL, (Reason(
            rule_id="mql.fit_threshold",
            message=f"fit score {profile.fit_score} reached the MQL threshold "
                    f"{model.mql_fit_threshold} ({why})"),)))
    return tuple(moves)
