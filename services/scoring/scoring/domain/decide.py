"""What one event, or time passing, does to a lead: its scores, then its stage."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from leadrelay_shared.contracts import (
    EngagementRecorded,
    Event,
    FeedbackReceived,
    FormSubmitted,
    Reason,
    Stage,
)

from ..config import ScoringModel
from .engagement import (
    Doing,
    Engagement,
    add_hits,
    doing,
    hit_sums,
    hits_for,
    score_engagement,
    seen,
)
from .fit import fit, grade, grade_at_least
from .profile import Decision, LeadProfile, Part, erase, merge_snapshot
from .stages import QUALIFIABLE, M, S, T, Transition, TransitionRejected, path, transition

__all__ = ["apply", "due_after", "erase", "on_engagement", "on_feedback", "on_time"]


def apply(
    profile: LeadProfile | None, event: Event, model: ScoringModel, now: datetime
) -> Decision:
    """Apply one intake event to a lead (``None``: scoring has not seen it yet)."""
    if profile and profile.erased_at and event.occurred_at <= profile.erased_at:
        return Decision(
            profile=None,
            ignored=Reason(
                rule_id="erasure.predates", message="event is older than the lead's erasure"
            ),
        )
    if isinstance(event, (FormSubmitted, EngagementRecorded)):
        return on_engagement(profile, event, model, now)
    if isinstance(event, FeedbackReceived):
        return on_feedback(profile, event, model, now)
    return Decision(profile=None)


def on_engagement(
    profile: LeadProfile | None,
    event: FormSubmitted | EngagementRecorded,
    model: ScoringModel,
    now: datetime,
) -> Decision:
    base = profile or LeadProfile(lead_id=event.lead_id)
    event_id, ts = str(event.event_id), event.occurred_at.timestamp()
    if seen(base.hits, event_id, ts):
        return Decision(
            profile=None, ignored=Reason(rule_id="event.duplicate", message="event already counted")
        )
    snapshot, snapshot_at = base.snapshot, base.snapshot_at
    is_form = isinstance(event, FormSubmitted)
    if isinstance(event, FormSubmitted):
        snapshot, snapshot_at = merge_snapshot(base, event.lead, event.occurred_at)
    elif event.email_domain and not snapshot.email_domain:
        snapshot = snapshot.model_copy(update={"email_domain": event.email_domain})
    if (
        profile is None
        or base.fit_version != model.version
        or (snapshot is not base.snapshot and snapshot != base.snapshot)
    ):
        fit_score, fit_parts = fit(snapshot, model, event.event_id)
    else:  # who they are did not change: the fit explanation stands, with its own cause
        fit_score, fit_parts = base.fit_score, base.fit_parts
    what = doing(event)
    now_ts = now.timestamp()
    hits = add_hits(
        base.hits, hits_for(what, model, event_id, ts), base.engagement_since, now_ts, model
    )
    sums = hit_sums(hits, model, base.sums)
    engaged = score_engagement(hits, model, now_ts, sums)
    eng_score = engaged.score
    # built whole rather than by replace(), which costs several times more on this path
    scored = LeadProfile(
        base.lead_id,
        snapshot,
        snapshot_at,
        base.stage,
        base.stage_entered_at,
        fit_score,
        grade(model, fit_score),
        eng_score,
        hits,
        base.engagement_since,
        base.cycle,
        base.erased_at,
        base.form_fills + is_form,
        fit_parts,
        model.version,
        sums,
    )
    moves = _qualify(scored, what, model, fit_parts, engaged)
    changed = profile is None or (fit_score, scored.fit_grade, eng_score) != (
        base.fit_score,
        base.fit_grade,
        base.engagement_score,
    )
    return Decision(_moved(scored, moves, now), fit_parts, engaged, moves, score_changed=changed)


def _qualify(
    p: LeadProfile,
    what: Doing,
    model: ScoringModel,
    fit_parts: tuple[Part, ...],
    engaged: Engagement,
) -> tuple[Transition, ...]:
    moves: list[Transition] = []
    stage = p.stage
    kind, url, _, _ = what
    if stage is None:
        moves.append(
            transition(
                None,
                Stage.INQUIRY,
                M,
                (
                    Reason(
                        rule_id="stage.first_touch",
                        message=f"first known contact: {kind.replace('_', ' ')}",
                    ),
                ),
            )
        )
        stage = Stage.INQUIRY
    if stage not in QUALIFIABLE:
        return tuple(moves)
    lane = next(
        (
            f
            for f in model.fast_lanes
            if f.event == kind
            and grade_at_least(p.fit_grade, f.min_grade)
            and (f.url_contains is None or f.url_contains in url)
        ),
        None,
    )
    if lane is not None:
        why = (
            Reason(
                rule_id=lane.id,
                message=f"fast lane: {kind.replace('_', ' ')} from a "
                f"grade {p.fit_grade} lead (lane needs {lane.min_grade} or better)",
            ),
            Reason(rule_id="mql.fit", message=_fit_line(p, fit_parts)),
        )
        moves.append(transition(stage, Stage.MQL, M, why))
    elif (
        grade_at_least(p.fit_grade, model.mql_min_grade)
        and p.engagement_score >= model.mql_min_engagement
    ):
        since = " since it was recycled" if stage is Stage.RECYCLED else ""
        why = (
            Reason(
                rule_id="mql.fit",
                message=f"{_fit_line(p, fit_parts)}, needs {model.mql_min_grade} or better",
            ),
            Reason(
                rule_id="mql.engagement",
                message=f"engagement {p.engagement_score}{since}"
                f" reached {model.mql_min_engagement} ("
                + ", ".join(x.message for x in engaged.lines())
                + ")",
            ),
        )
        moves.append(transition(stage, Stage.MQL, M, why))
    return tuple(moves)


def _fit_line(p: LeadProfile, fit_parts: tuple[Part, ...]) -> str:
    return (
        f"fit {p.fit_score} (grade {p.fit_grade}: " + ", ".join(x.message for x in fit_parts) + ")"
    )


def _moved(p: LeadProfile, moves: tuple[Transition, ...], now: datetime) -> LeadProfile:
    """The profile after its stage changes: a new MQL starts a new pass through the funnel; a
    recycle resets the engagement baseline, so re-qualifying takes new engagement."""
    if not moves:
        return p
    changes: dict[str, Any] = {"stage": moves[-1].to_stage, "stage_entered_at": now}
    cycle = p.cycle
    for move in moves:
        if move.to_stage is Stage.MQL:
            changes["cycle"] = cycle = cycle + 1
        if move.to_stage is Stage.RECYCLED:
            changes.update(engagement_since=now, hits=(), sums=None, engagement_score=0)
    return replace(p, **changes)


FEEDBACK_TARGETS: dict[str, tuple[Stage, ...]] = {
    "accepted": (Stage.SAL,),
    "disqualified": (Stage.DISQUALIFIED,),
    "converted": (Stage.SQL,),
    "won": (Stage.WON,),
    "lost": (Stage.LOST,),
}


def on_feedback(
    profile: LeadProfile | None, event: FeedbackReceived, model: ScoringModel, now: datetime
) -> Decision:
    """Sales' word moves the lead: accept → SAL, reject → Recycled or Disqualified (by reason),
    convert → SQL (and Opportunity with an opportunity id), won / lost close it."""
    current = profile.stage if profile else None
    steps: list[Stage] = []
    for target in _targets(event, model):
        steps.extend(path(steps[-1] if steps else current, target))
    if not steps:
        return Decision(
            profile=None,
            ignored=Reason(rule_id="feedback.no_change", message=f"lead is already {current}"),
        )
    reason = _feedback_reason(event, model)
    moves, stage = [], current
    try:
        for step in steps:
            moves.append(transition(stage, step, S, (reason,)))
            stage = step
    except TransitionRejected as exc:
        return Decision(profile=None, refused=(exc.reason, reason))
    assert profile is not None  # an unknown lead has no allowed sales transition
    return Decision(profile=_moved(profile, tuple(moves), now), transitions=tuple(moves))


def _targets(event: FeedbackReceived, model: ScoringModel) -> tuple[Stage, ...]:
    if event.feedback == "rejected":
        disqualify = event.reason_code in model.disqualify_reasons
        return (Stage.DISQUALIFIED if disqualify else Stage.RECYCLED,)
    if event.feedback == "converted" and event.opportunity_id:
        return (Stage.SQL, Stage.OPPORTUNITY)
    return FEEDBACK_TARGETS[event.feedback]


def _feedback_reason(event: FeedbackReceived, model: ScoringModel) -> Reason:
    who = f" by {event.actor_id}" if event.actor_id else ""
    if event.feedback == "rejected":
        code = event.reason_code or "other"
        end = (
            "disqualified" if code in model.disqualify_reasons else "recycled to marketing nurture"
        )
        return Reason(
            rule_id=f"feedback.rejected.{code}",
            message=f"rejected{who} ({code.replace('_', ' ')}): {end}",
        )
    if event.feedback == "disqualified":
        code = event.reason_code or "other"
        return Reason(
            rule_id=f"feedback.disqualified.{code}",
            message=f"disqualified{who} ({code.replace('_', ' ')})",
        )
    extra = f", opportunity {event.opportunity_id}" if event.opportunity_id else ""
    return Reason(rule_id=f"feedback.{event.feedback}", message=f"{event.feedback}{who}{extra}")


def on_time(profile: LeadProfile, model: ScoringModel, now: datetime) -> Decision:
    """Moves made by time alone: an MQL never accepted is recycled, an inquiry that never
    qualified joins nurture, a lost deal is recycled after a while."""
    rule = model.timers.get(profile.stage) if profile.stage else None
    if rule is None or profile.stage_entered_at is None:
        return Decision(profile=None)
    after, target, what = rule
    if now < profile.stage_entered_at + after:
        return Decision(profile=None)
    days = after.total_seconds() / 86400
    move = transition(
        profile.stage,
        target,
        T,
        (
            Reason(
                rule_id=f"timer.{profile.stage}_to_{target}",
                message=f"{what} within {days:g} days of becoming {profile.stage}",
            ),
        ),
    )
    return Decision(profile=_moved(profile, (move,), now), transitions=(move,))


def due_after(model: ScoringModel) -> dict[Stage, float]:
    """Seconds after which each timed stage is due for ``on_time`` (for the sweep's query)."""
    return {stage: after.total_seconds() for stage, (after, _, _) in model.timers.items()}
