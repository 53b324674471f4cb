"""Who the lead is: fit rules over the lead's snapshot, and the grade they add up to."""

from __future__ import annotations

import uuid

from leadrelay_shared.contracts import LeadSnapshot

from ..config import GRADES, FitRule, ScoringModel
from .profile import Part

RANK: dict[str, int] = {g: i for i, g in enumerate(GRADES)}


def grade(model: ScoringModel, fit_score: int) -> str:
    """The fit grade of a score: the first grade whose minimum it reaches, else F."""
    for name, floor in model.grades:
        if fit_score >= floor:
            return name
    return "F"


def grade_at_least(grade: str, minimum: str) -> bool:
    return RANK[grade] <= RANK[minimum]


def fit_matches(model: ScoringModel, snapshot: LeadSnapshot) -> list[FitRule]:
    """The fit rules that hold for ``snapshot``, in the model's order."""
    return [model.fit_rules[i] for i in fit_held(model, snapshot)]


def fit_held(model: ScoringModel, snapshot: LeadSnapshot) -> list[int]:
    """The places in ``model.fit_rules`` of the rules that hold for ``snapshot``, in order.

    Every rule tests one field, so a lead's fit is one memoised lookup per field; a lead
    without an email domain says nothing about free mail."""
    held: list[int] = []
    for name in model.fit_fields:
        raw = getattr(snapshot, name)
        if name == "is_free_email" and not snapshot.email_domain:
            raw = None
        held.extend(model.fit_held(name, raw))
    return sorted(held)


def fit(
    snapshot: LeadSnapshot, model: ScoringModel, event_id: uuid.UUID | None
) -> tuple[int, tuple[Part, ...]]:
    """Who they are: every fit rule that holds adds its points; the total is at least 0."""
    lines = model.fit_lines
    parts = tuple([Part(*lines[i], event_id) for i in fit_held(model, snapshot)])
    return max(sum(p.points for p in parts), 0), parts
