"""What-if: the leads of a window re-scored under a candidate model, beside what the active
model made of them.

Pure, like ``domain``: each lead's stored inputs (its form fills, engagement and sales
feedback, from its first to the window's end) go through ``domain.apply`` under the candidate
at the moments they happened, with time's own moves (``domain.on_time``) made when they fall
due between them; beside it stands where the lead really is. Replayed under the active model,
a lead ends where it is. Nothing is stored and nothing is sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadrelay_shared.contracts import (
    EngagementRecorded,
    FeedbackReceived,
    FormSubmitted,
    Reason,
    Stage,
)

from . import domain
from .config import GRADES, ScoringModel
from .domain import LeadProfile

Input = FormSubmitted | EngagementRecorded | FeedbackReceived
NONE = "(none)"


@dataclass(frozen=True)
class Scored:
    """Where a lead stands at the window's end under one model (its engagement score as its
    last event left it)."""

    stage: Stage | None
    fit_score: int
    fit_grade: str
    engagement_score: int
    became_mql: bool  # within the window
    reasons: tuple[Reason, ...]  # of its last stage change


@dataclass(frozen=True)
class LeadInputs:
    """What scoring was told about one lead, in the order it happened, and where the lead
    really stands at the window's end."""

    lead_id: str
    source: str  # utm_source of its first form fill
    campaign: str  # utm_campaign of its first form fill, else of its first campaign touch
    inputs: tuple[Input, ...]
    before: Scored


@dataclass(frozen=True)
class LeadChange:
    lead_id: str
    source: str
    campaign: str
    before: Scored
    after: Scored

    @property
    def changed(self) -> bool:
        return (self.before.stage, self.before.became_mql) != (
            self.after.stage,
            self.after.became_mql,
        )

    def row(self) -> dict[str, Any]:
        """The per-lead line of the answer and of the CSV (ids and scores, no personal data)."""
        b, a = self.before, self.after
        return {
            "lead_id": self.lead_id,
            "source": self.source,
            "campaign": self.campaign,
            "stage_before": b.stage.value if b.stage else None,
            "stage_after": a.stage.value if a.stage else None,
            "mql_before": b.became_mql,
            "mql_after": a.became_mql,
            "fit_before": b.fit_score,
            "fit_after": a.fit_score,
            "grade_before": b.fit_grade,
            "grade_after": a.fit_grade,
            "engagement_before": b.engagement_score,
            "engagement_after": a.engagement_score,
            "why_before": "; ".join(r.message for r in b.reasons),
            "why_after": "; ".join(r.message for r in a.reasons),
        }


@dataclass(frozen=True)
class Simulation:
    active_version: str
    candidate_version: str
    window_from: datetime
    window_to: datetime
    leads: tuple[LeadChange, ...]

    @property
    def changed(self) -> tuple[LeadChange, ...]:
        return tuple(c for c in self.leads if c.changed)

    def by_source(self) -> list[dict[str, Any]]:
        """MQLs per source and campaign under each model."""
        groups: dict[tuple[str, str], Counter[str]] = {}
        for c in self.leads:
            n = groups.setdefault((c.source, c.campaign), Counter())
            n["leads"] += 1
            n["mql_before"] += c.before.became_mql
            n["mql_after"] += c.after.became_mql
        return [
            {"source": s, "campaign": k, "leads": n["leads"], **_mqls(n)}
            for (s, k), n in sorted(groups.items())
        ]

    def grades(self) -> list[dict[str, Any]]:
        """How many leads end the window in each fit grade, under each model."""
        before = Counter(c.before.fit_grade for c in self.leads)
        after = Counter(c.after.fit_grade for c in self.leads)
        return [{"grade": g, "before": before[g], "after": after[g]} for g in GRADES]

    def summary(self) -> list[str]:
        n = len(self.leads)
        mql = Counter[str]()
        for c in self.leads:
            mql["before"] += c.before.became_mql
            mql["after"] += c.after.became_mql
        lines = [
            f"{n} leads active from {self.window_from:%Y-%m-%d %H:%M} to "
            f"{self.window_to:%Y-%m-%d %H:%M} UTC re-scored under {self.candidate_version} "
            f"(active: {self.active_version})",
            f"became MQL: {mql['before']} under {self.active_version}, "
            f"{mql['after']} under {self.candidate_version} ({mql['after'] - mql['before']:+d})",
            f"{len(self.changed)} would end the window in another stage or pass MQL differently",
            "grades (before → after): "
            + ", ".join(f"{g['grade']} {g['before']} → {g['after']}" for g in self.grades()),
        ]
        moved = sorted(self.by_source(), key=lambda g: -abs(g["mql_change"]))[:5]
        lines += [
            f"{g['source']} / {g['campaign']}: MQLs {g['mql_before']} → {g['mql_after']}"
            for g in moved
            if g["mql_change"]
        ]
        return lines


def _mqls(n: Counter[str]) -> dict[str, int]:
    return {
        "mql_before": n["mql_before"],
        "mql_after": n["mql_after"],
        "mql_change": n["mql_after"] - n["mql_before"],
    }


def replay(lead: LeadInputs, model: ScoringModel, since: datetime, until: datetime) -> Scored:
    """The lead's inputs through ``model``, each at its moment, time's moves between them."""
    profile: LeadProfile | None = None
    became_mql = False
    reasons: tuple[Reason, ...] = ()
    for event in (*lead.inputs, None):
        at = event.occurred_at if event is not None else until
        if profile is not None:  # what time did before this moment
            timed = domain.on_time(profile, model, at)
            if timed.profile is not None:
                profile, reasons = timed.profile, timed.transitions[-1].reasons
        if event is None:
            break
        decision = domain.apply(profile, event, model, at)
        if decision.profile is not None:
            profile = decision.profile
        if decision.transitions:
            reasons = decision.transitions[-1].reasons
            became_mql |= since <= at and any(t.to_stage is Stage.MQL for t in decision.transitions)
    if profile is None:
        return Scored(None, 0, "F", 0, False, ())
    return Scored(
        profile.stage,
        profile.fit_score,
        profile.fit_grade,
        profile.engagement_score,
        became_mql,
        reasons,
    )


def rescore(
    leads: Iterable[LeadInputs], candidate: ScoringModel, window: tuple[datetime, datetime]
) -> list[LeadChange]:
    """Each lead replayed under ``candidate``, beside where it stands."""
    since, until = window
    return [
        LeadChange(
            lead.lead_id,
            lead.source,
            lead.campaign,
            lead.before,
            replay(lead, candidate, since, until),
        )
        for lead in leads
    ]


def simulate(
    leads: Sequence[LeadInputs],
    candidate: ScoringModel,
    *,
    window: tuple[datetime, datetime],
    active_version: str,
) -> Simulation:
    return Simulation(
        active_version, candidate.version, *window, tuple(rescore(leads, candidate, window))
    )


def answer(sim: Simulation, *, every_lead: bool = False) -> dict[str, Any]:
    """The simulation as the API answers it (``schemas.ScoringSimulation``)."""
    by_source = sim.by_source()
    return {
        "active_version": sim.active_version,
        "candidate_version": sim.candidate_version,
        "window_from": sim.window_from,
        "window_to": sim.window_to,
        "leads_rescored": len(sim.leads),
        "leads_changed": len(sim.changed),
        "mql_before": sum(g["mql_before"] for g in by_source),
        "mql_after": sum(g["mql_after"] for g in by_source),
        "summary": sim.summary(),
        "by_source": by_source,
        "grades": sim.grades(),
        "leads": [c.row() for c in (sim.leads if every_lead else sim.changed)],
    }


def first_touch(inputs: Iterable[Input]) -> tuple[str, str]:
    """A lead's source and campaign: its first form fill's UTM, else its first campaign."""
    source, campaign = NONE, None
    for event in inputs:
        if isinstance(event, FormSubmitted) and source == NONE:
            source = event.utm.get("utm_source") or NONE
            campaign = campaign or event.utm.get("utm_campaign")
        elif isinstance(event, EngagementRecorded) and campaign is None:
            campaign = event.campaign
    return source, campaign or NONE
