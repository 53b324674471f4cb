"""Pure routing decisions: which rep, and why each other candidate was not chosen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from leadrelay_shared.contracts import Reason

from .config import RepConfig, TeamConfig


@dataclass(frozen=True)
class RoutingDecision:
    team_id: str
    rep: RepConfig | None
    strategy: str
    pointer_before: int
    pointer_after: int
    candidates: tuple[str, ...]
    skipped: tuple[Reason, ...]
    reasons: tuple[Reason, ...]

    def as_record(self) -> dict[str, object]:
        return {
            "team_id": self.team_id, "rep_id": self.rep.id if self.rep else None,
            "strategy": self.strategy, "pointer_before": self.pointer_before,
            "pointer_after": self.pointer_after, "candidates": list(self.candidates),
            "skipped": [r.model_dump() for r in self.skipped],
            "reasons": [r.model_dump() for r in self.reasons],
        }


def round_robin(team: TeamConfig, pointer: int, now: datetime) -> RoutingDecision:
    """The next available rep at or after ``pointer``; the pointer moves past the chosen rep."""
    reps = team.reps
    n = len(reps)
    start = pointer % n
    skipped: list[Reason] = []
    for step in range(n):
        index = (start + step) % n
        rep = reps[index]
        if not rep.active:
            skipped.append(Reason(rule_id="rep.inactive", message=f"{rep.id} is deactivated"))
            continue
        return RoutingDecision(
            team_id=team.id, rep=rep, strategy="round_robin", pointer_before=start,
            pointer_after=(index + 1) % n, candidates=tuple(r.id for r in reps),
            skipped=tuple(skipped),
            reasons=(Reason(rule_id="team.by_stage", message=f"team {team.id} takes this stage"),
                     Reason(rule_id="rr.next", message=f"{rep.id} is next in round robin "
                            f"(position {index} of {n})")))
    return RoutingDecision(
        team_id=team.id, rep=None, strategy="round_robin", pointer_before=start,
        pointer_after=start, candidates=tuple(r.id for r in reps), skipped=tuple(skipped),
        reasons=(Reason(rule_id="rr.none_available", message=f"no rep of {team.id} is available"),))
