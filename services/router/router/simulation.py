"""What-if: a window of real routing history replayed through a candidate configuration.

Pure, like ``domain``: the stored assignments (each lead as it was routed, its stage, the
moment) and the state when the window opened go in; each lead is decided again by
``domain.plan`` and ``domain.choose`` at the moment it was routed, under the candidate, and
comes out beside the owner it really got. Working hours, out-of-office and pauses are the
candidate's; daily and weekly capacity counts the assignments made before the window and
those of the replay; round-robin pointers start where they stood when the window opened and
move only within the replay. Nothing is stored and nothing is sent.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from leadrelay_shared.contracts import LeadSnapshot, Stage

from . import domain
from .config import RoutingConfig

CAPACITY_RULES = frozenset({"rep.capacity_day", "rep.capacity_week"})
KEPT_DAYS = timedelta(days=9)  # today and this ISO week, in any time zone


@dataclass(frozen=True)
class Routed:
    """One stored assignment: the lead as it was routed, and what it got."""

    assignment_id: uuid.UUID
    lead_id: str
    at: datetime
    kind: str  # assign or reroute
    stage: Stage
    lead: LeadSnapshot
    owner_id: str | None
    queue: str | None
    team_id: str | None
    territory: str | None
    strategy: str
    capacity_skipped: tuple[str, ...] = ()  # reps passed over because they were at capacity


@dataclass(frozen=True)
class Start:
    """The routing state when the window opened."""

    pointers: Mapping[str, int]  # pool (team id) → round-robin position
    loads: Mapping[str, Mapping[date, int]]  # rep → local day → assignments before the window
    owners: Mapping[str, str | None]  # lead → its owner then (a re-route excludes them)


class Outcome(NamedTuple):
    """What the candidate decides for one lead: the part of its decision the answer shows,
    kept small, as a window holds many of them."""

    rep_id: str | None
    queue: str | None
    team_id: str | None
    territory: str | None
    strategy: str
    summary: str
    skipped: tuple[tuple[str, str], ...]  # (rep id, rule id) of each rep passed over

    @classmethod
    def of(cls, d: domain.Decision) -> Outcome:
        skipped = tuple((s.rep_id, s.rule_id) for s in d.skipped)
        return cls(d.rep_id, d.queue, d.team_id, d.territory, d.strategy, d.summary, skipped)


@dataclass(frozen=True)
class Replayed:
    """One lead's assignment as it happened and as the candidate decides it."""

    before: Routed
    after: Outcome

    @property
    def changed(self) -> bool:
        return (self.before.owner_id, self.before.queue) != (self.after.rep_id, self.after.queue)

    def row(self) -> dict[str, Any]:
        """The per-lead line of the answer and of the CSV (no personal data: ids only)."""
        b, a = self.before, self.after
        return {
            "lead_id": b.lead_id,
            "assignment_id": str(b.assignment_id),
            "routed_at": b.at,
            "kind": b.kind,
            "stage": b.stage.value,
            "owner_before": b.owner_id,
            "team_before": b.team_id,
            "territory_before": b.territory,
            "queue_before": b.queue,
            "owner_after": a.rep_id,
            "team_after": a.team_id,
            "territory_after": a.territory,
            "queue_after": a.queue,
            "strategy_after": a.strategy,
            "changed": self.changed,
            "why_after": a.summary,
        }


@dataclass(frozen=True)
class RepChange:
    rep_id: str
    before: int
    after: int
    capacity_before: int  # leads the rep was passed over for, at capacity
    capacity_after: int

    @property
    def change(self) -> int:
        return self.after - self.before


@dataclass(frozen=True)
class PoolSpread:
    """A pool's fairness: the widest gap between two members' assignments per unit of weight
    (for plain round robin, the most any member got less the least)."""

    team_id: str
    strategy: str | None
    before: float | None
    after: float | None
    assigned_after: Mapping[str, int]


@dataclass(frozen=True)
class Simulation:
    candidate_version: str
    versions_before: tuple[str, ...]
    window_from: datetime
    window_to: datetime
    leads: tuple[Replayed, ...]
    reps: tuple[RepChange, ...]
    pools: tuple[PoolSpread, ...]
    queued_before: int
    queued_after: int

    @property
    def changed(self) -> tuple[Replayed, ...]:
        return tuple(r for r in self.leads if r.changed)

    def summary(self) -> list[str]:
        """What a person reads first: one screen."""
        n, moved = len(self.leads), len(self.changed)
        share = f" ({moved / n:.1%})" if n else ""
        before = ", ".join(self.versions_before) or "none"
        lines = [
            f"{n} routed leads from {self.window_from:%Y-%m-%d %H:%M} to "
            f"{self.window_to:%Y-%m-%d %H:%M} UTC replayed under {self.candidate_version} "
            f"(routed under {before})",
            f"{moved} would get another owner{share}",
            f"to a queue or nobody: {self.queued_before} before, {self.queued_after} after",
        ]
        gains = sorted((r for r in self.reps if r.change), key=lambda r: (-r.change, r.rep_id))
        if gains:
            lines.append(
                "owners: "
                + ", ".join(f"{r.rep_id} {r.before} → {r.after} ({r.change:+d})" for r in gains)
            )
        full = [r for r in self.reps if r.capacity_before or r.capacity_after]
        if full:
            lines.append(
                "passed over at capacity: "
                + ", ".join(f"{r.rep_id} {r.capacity_before} → {r.capacity_after}" for r in full)
            )
        for p in self.pools:
            if p.after is not None or p.before is not None:
                lines.append(
                    f"pool {p.team_id}: spread {_spread_text(p.before)} → {_spread_text(p.after)}"
                )
        return lines


def _spread_text(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def decide_all(
    history: Iterable[Routed], start: Start, config: RoutingConfig
) -> Iterator[tuple[Routed, domain.Decision]]:
    """Each assignment of ``history`` (in the order it was made) decided again under
    ``config`` at its moment, the state moving as router's would."""
    pointers = dict(start.pointers)
    loads: dict[str, dict[date, int]] = {r: dict(d) for r, d in start.loads.items()}
    owners = dict(start.owners)
    today: date | None = None
    for routed in history:
        if routed.at.date() != today:  # a new day: forget loads older than a week can count
            today = routed.at.date()
            _forget_before(loads, today - KEPT_DAYS)
        exclude: tuple[str, ...] = ()
        if routed.kind == "reroute":
            current = owners.get(routed.lead_id)
            exclude = (current,) if current else ()
        target = domain.plan(routed.lead, routed.stage, config)
        team = target.team_id
        decision = domain.choose(
            target, config, pointers.get(team, 0) if team else 0, loads, routed.at, exclude
        )
        if decision.moves_pointer:
            assert decision.team_id is not None and decision.pointer_after is not None
            pointers[decision.team_id] = decision.pointer_after
        if decision.rep_id is not None:
            rep = config.reps[decision.rep_id]
            per_day = loads.setdefault(rep.id, {})
            day = domain.local_day(rep, routed.at)
            per_day[day] = per_day.get(day, 0) + 1
        owners[routed.lead_id] = decision.rep_id
        yield routed, decision


def simulate(
    history: Sequence[Routed],
    start: Start,
    candidate: RoutingConfig,
    *,
    window: tuple[datetime, datetime],
    versions_before: Iterable[str] = (),
) -> Simulation:
    """Every assignment of ``history`` decided again under ``candidate``, with what changed
    per lead, per rep and per pool."""
    replayed = [Replayed(r, Outcome.of(d)) for r, d in decide_all(history, start, candidate)]
    return Simulation(
        candidate_version=candidate.version,
        versions_before=tuple(sorted(set(versions_before))),
        window_from=window[0],
        window_to=window[1],
        leads=tuple(replayed),
        reps=_reps(replayed),
        pools=_pools(replayed, candidate),
        queued_before=sum(1 for r in replayed if r.before.owner_id is None),
        queued_after=sum(1 for r in replayed if r.after.rep_id is None),
    )


def _forget_before(loads: dict[str, dict[date, int]], first: date) -> None:
    for per_day in loads.values():
        for day in [d for d in per_day if d < first]:
            del per_day[day]


def _reps(replayed: Sequence[Replayed]) -> tuple[RepChange, ...]:
    before = Counter(r.before.owner_id for r in replayed if r.before.owner_id)
    after = Counter(r.after.rep_id for r in replayed if r.after.rep_id)
    full_before = Counter(rep for r in replayed for rep in r.before.capacity_skipped)
    full_after = Counter(
        rep for r in replayed for rep, rule in r.after.skipped if rule in CAPACITY_RULES
    )
    ids = sorted(set(before) | set(after) | set(full_before) | set(full_after))
    return tuple(RepChange(i, before[i], after[i], full_before[i], full_after[i]) for i in ids)


def _pools(replayed: Sequence[Replayed], candidate: RoutingConfig) -> tuple[PoolSpread, ...]:
    """The spread of every round-robin pool that took leads before or takes them after."""
    before: dict[str, Counter[str]] = defaultdict(Counter)
    after: dict[str, Counter[str]] = defaultdict(Counter)
    for r in replayed:
        if r.before.team_id and r.before.owner_id and r.before.strategy != "account_owner":
            before[r.before.team_id][r.before.owner_id] += 1
        if r.after.team_id and r.after.rep_id and r.after.strategy != "account_owner":
            after[r.after.team_id][r.after.rep_id] += 1
    out = []
    for team_id in sorted(set(before) | set(after)):
        team = candidate.teams.get(team_id)
        weights = Counter(team.sequence) if team else Counter()
        members = set(team.members) if team else set(before[team_id])
        out.append(
            PoolSpread(
                team_id,
                team.strategy if team else None,
                _spread(before[team_id], members, weights) if team_id in before else None,
                _spread(after[team_id], members, weights) if team_id in after else None,
                dict(sorted(after[team_id].items())),
            )
        )
    return tuple(out)


def _spread(counts: Mapping[str, int], members: Iterable[str], weights: Mapping[str, int]) -> float:
    per_weight = [counts.get(m, 0) / (weights.get(m) or 1) for m in members]
    return round(max(per_weight) - min(per_weight), 2) if per_weight else 0.0


def answer(sim: Simulation, *, every_lead: bool = False) -> dict[str, Any]:
    """The simulation as the API answers it (``schemas.Simulation``)."""
    return {
        "candidate_version": sim.candidate_version,
        "routed_under": list(sim.versions_before),
        "window_from": sim.window_from,
        "window_to": sim.window_to,
        "leads_replayed": len(sim.leads),
        "leads_changed": len(sim.changed),
        "queued_before": sim.queued_before,
        "queued_after": sim.queued_after,
        "summary": sim.summary(),
        "reps": [
            {
                "rep_id": r.rep_id,
                "before": r.before,
                "after": r.after,
                "change": r.change,
                "capacity_before": r.capacity_before,
                "capacity_after": r.capacity_after,
            }
            for r in sim.reps
        ],
        "pools": [
            {
                "team_id": p.team_id,
                "strategy": p.strategy,
                "spread_before": p.before,
                "spread_after": p.after,
                "assigned_after": dict(p.assigned_after),
            }
            for p in sim.pools
        ],
        "leads": [r.row() for r in (sim.leads if every_lead else sim.changed)],
    }
