"""Pure routing decisions: which rep gets a lead, and why every other candidate did not.

A decision is made in two steps, both pure functions of plain data and an injected ``now``:

* ``plan`` looks only at the lead and the configuration: the matched account (and its owner, or
  the owner's SDR for an MQL) and the territory, which names the team for the stage.
* ``choose`` adds the state the handler read under lock (the team's round-robin pointer and the
  reps' recent assignment counts) and picks the rep: the account owner if eligible, else the
  team's strategy (round robin, weighted round robin, least loaded), else the fallback.

Reps are skipped, with a reason, when deactivated, paused, out of office, outside working hours
(if the team respects them), at capacity for the day or week, or excluded (a re-route).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from leadrelay_shared.contracts import LeadSnapshot, Reason, Stage

from .config import Rep, RoutingConfig, Team, Territory, in_segment
from .matching import AccountMatch

Loads = Mapping[str, Mapping[date, int]]
"""Assignments per rep per local calendar day (only the last 8 days matter)."""


@dataclass(frozen=True)
class CurrentOwner:
    """Who owns a lead now, as the last assignment left it."""

    lead_id: str
    assignment_id: uuid.UUID
    owner_id: str | None
    queue: str | None
    team_id: str | None
    stage: str
    lead: dict[str, Any]


@dataclass(frozen=True)
class Skip:
    rep_id: str
    rule_id: str
    message: str


@dataclass(frozen=True)
class Target:
    stage: Stage
    account: AccountMatch | None
    direct_rep: str | None
    territory: str | None
    team_id: str | None
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Decision:
    stage: Stage
    rep_id: str | None
    queue: str | None
    team_id: str | None
    strategy: str
    pointer_before: int | None
    pointer_after: int | None
    account: AccountMatch | None
    territory: str | None
    candidates: tuple[str, ...]
    skipped: tuple[Skip, ...]
    reasons: tuple[Reason, ...]
    excluded: tuple[str, ...] = ()
    config_version: str = ""

    @property
    def moves_pointer(self) -> bool:
        """True when the team's round-robin pointer is to be saved after this decision."""
        return (
            self.team_id is not None
            and self.pointer_after is not None
            and self.strategy not in ("account_owner", "none")
        )

    @property
    def summary(self) -> str:
        return "; ".join(r.message for r in self.reasons)

    def as_record(self) -> dict[str, Any]:
        account = (
            None
            if self.account is None
            else {
                "id": self.account.account_id,
                "name": self.account.account_name,
                "owner": self.account.owner,
                "method": self.account.method,
                "confidence": self.account.confidence,
                "detail": self.account.detail,
            }
        )
        return {
            "stage": self.stage.value,
            "rep_id": self.rep_id,
            "queue": self.queue,
            "team_id": self.team_id,
            "strategy": self.strategy,
            "pointer_before": self.pointer_before,
            "pointer_after": self.pointer_after,
            "account": account,
            "territory": self.territory,
            "candidates": list(self.candidates),
            "skipped": [
                {"rep_id": s.rep_id, "rule_id": s.rule_id, "message": s.message}
                for s in self.skipped
            ],
            "excluded": list(self.excluded),
            "config_version": self.config_version,
            "reasons": [r.model_dump() for r in self.reasons],
            "summary": self.summary,
        }


def _r(rule_id: str, message: str) -> Reason:
    return Reason(rule_id=rule_id, message=message)


def territory_matches(t: Territory, lead: LeadSnapshot) -> bool:
    if t.countries and (lead.country or "").upper() not in t.countries:
        return False
    if t.regions and " ".join((lead.region or "").casefold().split()) not in t.regions:
        return False
    if t.postal or t.prefixes:
        code = (lead.postal_code or "").replace(" ", "").upper()
        if not code or not (
            any(code.startswith(p) for p in t.prefixes)
            or any(len(code) == len(low) and low <= code <= high for low, high in t.postal)
        ):
            return False
    if t.segments and not any(in_segment(lead.company_size, lo, hi) for _, lo, hi in t.segments):
        return False
    return not t.industries or " ".join((lead.industry or "").casefold().split()) in t.industries


def find_territory(
    lead: LeadSnapshot, stage: Stage, config: RoutingConfig
) -> tuple[Territory | None, list[Reason]]:
    """The first territory, by priority, that matches the lead and has a team for the stage."""
    notes: list[Reason] = []
    for t in config.territories_for(lead.country):
        if territory_matches(t, lead):
            if stage in t.teams:
                return t, notes
            notes.append(
                _r(
                    "territory.no_team",
                    f"territory {t.id} matches but has no team for {stage.value}",
                )
            )
    return None, notes


def plan(lead: LeadSnapshot, stage: Stage, config: RoutingConfig) -> Target:
    reasons: list[Reason] = []
    account = config.accounts.match(lead.email_domain, lead.is_free_email, lead.company)
    direct = None
    if account is not None:
        reasons.append(
            _r(
                f"account.{account.method}",
                f"matched account {account.account_name} ({account.detail})",
            )
        )
        owner = config.reps.get(account.owner) if account.owner else None
        if owner is not None:
            direct = owner.id
            if stage is Stage.MQL and owner.sdr:
                direct = owner.sdr
                reasons.append(
                    _r(
                        "account.owner_sdr",
                        f"the account owner {owner.id} has SDR {owner.sdr}, who takes MQLs",
                    )
                )
            else:
                reasons.append(_r("account.owner", f"the account is owned by {owner.id}"))
    territory, notes = find_territory(lead, stage, config)
    reasons += notes
    if territory is not None:
        team_id: str | None = territory.teams[stage]
        reasons.append(
            _r(
                "territory.matched",
                f"territory {territory.id} (priority "
                f"{territory.priority}) sends {stage.value} "
                f"to team {team_id}",
            )
        )
    else:
        team = config.team_for(stage)
        team_id = team.id if team else None
        reasons.append(
            _r(
                "territory.default",
                f"no territory matched; team {team_id} takes {stage.value} by default",
            )
            if team_id
            else _r("team.none", f"no territory or team takes {stage.value}")
        )
    return Target(
        stage, account, direct, territory.id if territory else None, team_id, tuple(reasons)
    )


def local_day(rep: Rep, now: datetime) -> date:
    return rep.local(now).date()


@lru_cache(maxsize=256)
def _week_so_far(zone: ZoneInfo, now: datetime) -> tuple[date, date]:
    """Today and this ISO week's Monday in ``zone`` (a batch asks for each rep's, at one now)."""
    today = now.astimezone(zone).date()
    return today, today - timedelta(days=today.weekday())


def counts(rep: Rep, loads: Loads, now: datetime) -> tuple[int, int]:
    """Assignments to ``rep`` today and this ISO week, in the rep's own time zone."""
    per_day = loads.get(rep.id)
    if not per_day:
        return 0, 0
    today, monday = _week_so_far(rep.zone, now)
    week = 0
    for d, n in per_day.items():
        if monday <= d <= today:
            week += n
    return per_day.get(today, 0), week


def unavailable(
    rep: Rep, now: datetime, loads: Loads, *, hours: bool, exclude: Collection[str]
) -> Skip | None:
    """Why ``rep`` cannot take a lead at ``now``, or None when they can."""
    if rep.id in exclude:
        return Skip(rep.id, "rep.excluded", f"{rep.id} is the previous owner")
    if not rep.active:
        return Skip(rep.id, "rep.deactivated", f"{rep.id} is deactivated")
    if rep.paused:
        return Skip(rep.id, "rep.paused", f"{rep.id} is paused")
    if rep.absent_on(local_day(rep, now)):
        return Skip(rep.id, "rep.out_of_office", f"{rep.id} is out of office today")
    if hours and not rep.working_at(now):
        local = rep.local(now)
        return Skip(
            rep.id,
            "rep.off_hours",
            f"{rep.id} is outside working hours ({local:%a %H:%M} {rep.zone.key})",
        )
    day, week = counts(rep, loads, now)
    if rep.day_cap is not None and day >= rep.day_cap:
        return Skip(rep.id, "rep.capacity_day", f"{rep.id} has {day} of {rep.day_cap} leads today")
    if rep.week_cap is not None and week >= rep.week_cap:
        return Skip(
            rep.id, "rep.capacity_week", f"{rep.id} has {week} of {rep.week_cap} leads this week"
        )
    return None


def rep_state(rep: Rep, now: datetime, loads: Loads, *, hours: bool) -> dict[str, Any]:
    """Whether ``rep`` could take a lead at ``now`` (working hours counted when ``hours``: one
    of the rep's teams respects them), and why not: the first rule of ``unavailable`` that
    holds, with today's and this week's load."""
    skip = unavailable(rep, now, loads, hours=hours, exclude=())
    day, week = counts(rep, loads, now)
    return {
        "rep_id": rep.id,
        "name": rep.name,
        "state": skip.rule_id.removeprefix("rep.") if skip else "available",
        "reason": skip.message if skip else f"{rep.id} can take a lead now",
        "paused": rep.paused,
        "active": rep.active,
        "out_of_office": [{"from": a.isoformat(), "to": b.isoformat()} for a, b in rep.absences],
        "today": day,
        "day_cap": rep.day_cap,
        "this_week": week,
        "week_cap": rep.week_cap,
        "zone": rep.zone.key,
    }


def _pick(
    team: Team,
    config: RoutingConfig,
    pointer: int,
    loads: Loads,
    now: datetime,
    exclude: Collection[str],
) -> tuple[int | None, int, list[Skip]]:
    """The position in the team's sequence of the chosen rep (None if nobody), the pointer
    after, and who was skipped."""
    seq = team.sequence
    n = len(seq)
    start = pointer % n
    skipped: dict[str, Skip] = {}
    eligible: list[int] = []
    for step in range(n):
        pos = (start + step) % n
        rep_id = seq[pos]
        if rep_id in skipped:
            continue
        why = unavailable(
            config.reps[rep_id], now, loads, hours=team.respect_hours, exclude=exclude
        )
        if why is not None:
            skipped[rep_id] = why
            continue
        eligible.append(pos)
        if team.strategy != "least_loaded":
            break
    if not eligible:
        return None, start, list(skipped.values())
    if team.strategy == "least_loaded":
        chosen = min(
            eligible, key=lambda p: (*counts(config.reps[seq[p]], loads, now), (p - start) % n)
        )
    else:
        chosen = eligible[0]
    return chosen, (chosen + 1) % n, list(skipped.values())


class _Common(TypedDict):
    """What every decision for one target says, whoever gets the lead."""

    stage: Stage
    account: AccountMatch | None
    territory: str | None
    excluded: tuple[str, ...]
    config_version: str


class _TeamCommon(_Common):
    """And what every decision of a team says."""

    team_id: str | None
    strategy: str
    candidates: tuple[str, ...]
    pointer_before: int | None


def choose(
    target: Target,
    config: RoutingConfig,
    pointer: int,
    loads: Loads,
    now: datetime,
    exclude: Collection[str] = (),
) -> Decision:
    reasons = list(target.reasons)
    skipped: list[Skip] = []
    common: _Common = {
        "stage": target.stage,
        "account": target.account,
        "territory": target.territory,
        "excluded": tuple(exclude),
        "config_version": config.version,
    }
    if target.direct_rep is not None:
        rep = config.reps[target.direct_rep]
        why = unavailable(rep, now, loads, hours=False, exclude=exclude)
        if why is None:
            reasons.append(_r("owner.assigned", f"{rep.id} gets the lead as the account's owner"))
            return Decision(
                rep_id=rep.id,
                queue=None,
                team_id=target.team_id,
                strategy="account_owner",
                pointer_before=None,
                pointer_after=None,
                candidates=(rep.id,),
                skipped=(),
                reasons=tuple(reasons),
                **common,
            )
        skipped.append(why)
        reasons.append(_r("owner.unavailable", f"{why.message}, so the territory team decides"))
    team = config.teams.get(target.team_id) if target.team_id else None
    if team is None:
        reasons.append(_r("queue.fallback", f"nobody takes it: queued in {config.fallback_queue}"))
        return Decision(
            rep_id=None,
            queue=config.fallback_queue,
            team_id=None,
            strategy="none",
            pointer_before=None,
            pointer_after=None,
            candidates=(),
            skipped=tuple(skipped),
            reasons=tuple(reasons),
            **common,
        )
    chosen, after, team_skips = _pick(team, config, pointer, loads, now, exclude)
    skipped += team_skips
    n = len(team.sequence)
    base: _TeamCommon = {
        **common,
        "team_id": team.id,
        "strategy": team.strategy,
        "candidates": team.members,
        "pointer_before": pointer % n,
    }
    if chosen is not None:
        rep_id = team.sequence[chosen]
        reasons.append(
            _r(
                f"strategy.{team.strategy}",
                _why(team, rep_id, chosen, loads, config, now, len(skipped)),
            )
        )
        return Decision(
            rep_id=rep_id,
            queue=None,
            pointer_after=after,
            skipped=tuple(skipped),
            reasons=tuple(reasons),
            **base,
        )
    reasons.append(_r("team.nobody_available", f"no rep of {team.id} is available"))
    if team.fallback_rep is not None:
        reasons.append(_r("fallback.rep", f"{team.fallback_rep} is the team's fallback owner"))
        return Decision(
            rep_id=team.fallback_rep,
            queue=None,
            pointer_after=pointer % n,
            skipped=tuple(skipped),
            reasons=tuple(reasons),
            **base,
        )
    queue = team.fallback_queue or config.fallback_queue
    reasons.append(_r("fallback.queue", f"queued in {queue} until someone takes it"))
    return Decision(
        rep_id=None,
        queue=queue,
        pointer_after=pointer % n,
        skipped=tuple(skipped),
        reasons=tuple(reasons),
        **base,
    )


def _why(
    team: Team,
    rep_id: str,
    position: int,
    loads: Loads,
    config: RoutingConfig,
    now: datetime,
    skipped: int,
) -> str:
    after = f" after skipping {skipped}" if skipped else ""
    if team.strategy == "least_loaded":
        day, week = counts(config.reps[rep_id], loads, now)
        return f"{rep_id} has the fewest leads in {team.id} ({day} today, {week} this week){after}"
    kind = "weighted round robin" if team.strategy == "weighted_round_robin" else "round robin"
    return (
        f"{rep_id} is next in {kind} of {team.id} (position {position} of "
        f"{len(team.sequence)}){after}"
    )


def decide(
    lead: LeadSnapshot,
    stage: Stage,
    config: RoutingConfig,
    pointer: int,
    loads: Loads,
    now: datetime,
    exclude: Collection[str] = (),
) -> Decision:
    """Both steps at once, for callers that already hold the team's pointer (tests, bench)."""
    return choose(plan(lead, stage, config), config, pointer, loads, now, exclude)
