"""A lead as scoring keeps it, and the decision an event makes about it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from leadrelay_shared.contracts import LeadSnapshot, Reason, Stage

if TYPE_CHECKING:
    from .engagement import Engagement, EngagementLine, Hit, HitSums
    from .stages import Transition

ERASED_KEEPS = ("company", "country", "region", "company_size", "industry", "is_free_email")


class Part(NamedTuple):
    """One line of a fit score's explanation, with the event that caused it."""

    rule_id: str
    points: int
    message: str
    event_id: uuid.UUID | str | None


@dataclass(frozen=True, slots=True)
class LeadProfile:
    """A lead as scoring keeps it. Immutable: every change is a new profile."""

    lead_id: str
    snapshot: LeadSnapshot = LeadSnapshot()
    snapshot_at: datetime | None = None
    stage: Stage | None = None
    stage_entered_at: datetime | None = None
    fit_score: int = 0
    fit_grade: str = "F"
    engagement_score: int = 0
    hits: tuple[Hit, ...] = ()
    engagement_since: datetime | None = None
    cycle: int = 0
    erased_at: datetime | None = None
    form_fills: int = 0
    fit_parts: tuple[Part, ...] = ()
    fit_version: str | None = None  # the model version ``fit_parts`` were computed with
    sums: HitSums | None = field(default=None, compare=False, repr=False)
    """Derived from ``hits`` (never stored): per-rule sums that make the next score O(rules)."""


class Decision(NamedTuple):
    """What an event did to a lead: the new profile (None: nothing to keep), the explanation of
    its scores, the stage changes made, and any change that was asked for but refused."""

    profile: LeadProfile | None
    fit_parts: tuple[Part, ...] = ()
    engagement: Engagement | None = None
    transitions: tuple[Transition, ...] = ()
    refused: tuple[Reason, ...] = ()
    score_changed: bool = False
    ignored: Reason | None = None

    @property
    def engagement_parts(self) -> tuple[EngagementLine, ...]:
        """The explanation of the engagement score, built when asked for."""
        return self.engagement.lines() if self.engagement is not None else ()


def merge_snapshot(
    profile: LeadProfile, new: LeadSnapshot, at: datetime
) -> tuple[LeadSnapshot, datetime | None]:
    """Newer non-empty values win; an older (late) event only fills what is still missing."""
    old, old_at = profile.snapshot, profile.snapshot_at
    updates = {k: v for k, v in new if v not in (None, "")}  # a snapshot's fields are flat
    if old_at is not None and at < old_at:
        missing = {k: v for k, v in updates.items() if getattr(old, k) in (None, "")}
        return old.model_copy(update=missing), old_at
    if not new.email_domain:
        updates.pop("is_free_email", None)
    return old.model_copy(update=updates), at


def erase(profile: LeadProfile, now: datetime) -> LeadProfile:
    """Personal fields go; scores, stage and firmographics stay, so funnel reports still add up."""
    kept = {k: getattr(profile.snapshot, k) for k in ERASED_KEEPS}
    return replace(profile, snapshot=LeadSnapshot(**kept), erased_at=now)
