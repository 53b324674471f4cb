"""The demand waterfall's stage machine: which moves exist and who may make each."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from leadrelay_shared.contracts import Reason, Stage


class Actor(StrEnum):
    """Who may cause a stage change: marketing's rules, sales' feedback, or time passing."""

    MARKETING = "marketing"
    SALES = "sales"
    TIME = "time"


M, S, T = Actor.MARKETING, Actor.SALES, Actor.TIME
TRANSITIONS: dict[tuple[Stage | None, Stage], frozenset[Actor]] = {
    (None, Stage.INQUIRY): frozenset({M}),
    (Stage.INQUIRY, Stage.MQL): frozenset({M}),
    (Stage.INQUIRY, Stage.NURTURE): frozenset({T}),
    (Stage.INQUIRY, Stage.DISQUALIFIED): frozenset({S}),
    (Stage.MQL, Stage.SAL): frozenset({S}),
    (Stage.MQL, Stage.RECYCLED): frozenset({S, T}),
    (Stage.MQL, Stage.DISQUALIFIED): frozenset({S}),
    (Stage.SAL, Stage.SQL): frozenset({S}),
    (Stage.SAL, Stage.RECYCLED): frozenset({S}),
    (Stage.SAL, Stage.DISQUALIFIED): frozenset({S}),
    (Stage.SQL, Stage.OPPORTUNITY): frozenset({S}),
    (Stage.SQL, Stage.RECYCLED): frozenset({S}),
    (Stage.SQL, Stage.DISQUALIFIED): frozenset({S}),
    (Stage.SQL, Stage.LOST): frozenset({S}),
    (Stage.OPPORTUNITY, Stage.WON): frozenset({S}),
    (Stage.OPPORTUNITY, Stage.LOST): frozenset({S}),
    (Stage.NURTURE, Stage.MQL): frozenset({M}),
    (Stage.NURTURE, Stage.DISQUALIFIED): frozenset({S}),
    (Stage.RECYCLED, Stage.MQL): frozenset({M}),
    (Stage.RECYCLED, Stage.DISQUALIFIED): frozenset({S}),
    (Stage.LOST, Stage.RECYCLED): frozenset({S, T}),
}
ALLOWED: dict[Stage | None, frozenset[Stage]] = {
    source: frozenset(to for (fr, to) in TRANSITIONS if fr == source) for source in (None, *Stage)
}
FORWARD = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.WON)
QUALIFIABLE = frozenset({Stage.INQUIRY, Stage.NURTURE, Stage.RECYCLED})


class TransitionRejected(Exception):
    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Transition:
    from_stage: Stage | None
    to_stage: Stage
    actor: Actor
    reasons: tuple[Reason, ...]


def transition(
    current: Stage | None, target: Stage, actor: Actor, reasons: tuple[Reason, ...]
) -> Transition:
    """A checked stage change; a forbidden one raises ``TransitionRejected``, never applies."""
    allowed = TRANSITIONS.get((current, target))
    if allowed is None:
        raise TransitionRejected(
            Reason(
                rule_id="stage.forbidden",
                message=f"a lead cannot move from {current or 'nothing'} to {target}",
            )
        )
    if actor not in allowed:
        who = " or ".join(sorted(allowed))
        raise TransitionRejected(
            Reason(
                rule_id="stage.wrong_actor",
                message=f"{current or 'nothing'} → {target} is made by {who}, not by {actor}",
            )
        )
    return Transition(current, target, actor, reasons)


def path(current: Stage | None, target: Stage) -> list[Stage]:
    """Forward moves may skip stages sales does not record (accepted and converted at once)."""
    if current == target:
        return []
    if current in FORWARD and target in FORWARD:
        start, end = FORWARD.index(current), FORWARD.index(target)
        if start < end:
            return list(FORWARD[start + 1 : end + 1])
    return [target]
