"""What analytics keeps of each event, and the planner: pure functions of plain data.

Every event becomes facts keyed by its own id (so a redelivery writes nothing new), and
candidates for its lead's row that win only if they are the lead's first touch, its latest
assignment or its latest stage. Whatever order the events arrive in, the read model ends the
same.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal, get_args

from leadrelay_shared.contracts import (
    ActivityLogged,
    EngagementRecorded,
    Event,
    FeedbackReceived,
    FormSubmitted,
    LeadAssigned,
    SlaBreached,
    Stage,
    StageChanged,
)

MARKETING, SALES = "marketing", "sales"
HANDLED: tuple[type[Event], ...] = (
    FormSubmitted,
    EngagementRecorded,
    ActivityLogged,
    FeedbackReceived,
    StageChanged,
    LeadAssigned,
    SlaBreached,
)
"""The events analytics keeps facts of; the consumer skips the others undecoded."""

FUNNEL: tuple[Stage, ...] = (
    Stage.INQUIRY,
    Stage.MQL,
    Stage.SAL,
    Stage.SQL,
    Stage.OPPORTUNITY,
    Stage.WON,
)
"""The waterfall's forward stages, in order; a lead reaches the next stage by entering it or any
stage after it (a fast lane may skip one)."""
SIDE: tuple[Stage, ...] = (Stage.NURTURE, Stage.RECYCLED, Stage.DISQUALIFIED, Stage.LOST)
STAGES: tuple[Stage, ...] = FUNNEL + SIDE

# Moves of one decision share a time; within a cycle they follow the waterfall, and a side stage
# ends what came before it in that cycle.
_ORDER: dict[str, int] = {s.value: i for i, s in enumerate(FUNNEL)} | {
    s.value: len(FUNNEL) for s in SIDE
}

RATE_NAMES: tuple[str, ...] = tuple(f"{a.value}_to_{b.value}" for a, b in pairwise(FUNNEL))
"""``inquiry_to_mql`` … ``opportunity_to_won``: the planner's rates, one per forward step."""

# ISO 4217 minor units where they are not 2 (amounts are kept in minor units, so that every
# split of a deal sums exactly to it)
_MINOR_DIGITS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


def minor_digits(currency: str) -> int:
    return _MINOR_DIGITS.get(currency, 2)


def to_minor(amount: float, currency: str) -> int:
    """An amount in the currency's minor unit, from its decimal text (no binary rounding)."""
    return int((Decimal(str(amount)) * 10 ** minor_digits(currency)).to_integral_value())


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-minor_digits(currency))


def stage_order(stage: str, cycle: int) -> int:
    """Orders a lead's stage changes that share a time: by cycle, then along the waterfall."""
    return cycle * 16 + _ORDER[stage]


@dataclass
class Facts:
    """The rows a batch of events adds: one list per fact table, and the lead candidates."""

    touches: list[dict[str, Any]] = field(default_factory=list)
    stage_changes: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    feedback: list[dict[str, Any]] = field(default_factory=list)
    firsts: dict[str, dict[str, Any]] = field(default_factory=dict)
    owners: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "touches": self.touches,
            "stage_changes": self.stage_changes,
            "assignments": self.assignments,
            "breaches": self.breaches,
            "feedback": self.feedback,
        }


def _keep(
    best: dict[str, dict[str, Any]], row: dict[str, Any], key: tuple[Any, ...], newest: bool
) -> None:
    """Keep for the row's lead the earliest (or newest) candidate by ``key``."""
    held = best.get(row["lead_id"])
    if held is None or (key > held["_key"] if newest else key < held["_key"]):
        best[row["lead_id"]] = {**row, "_key": key}


def _first(
    facts: Facts, event: Event, origin: str, source: str | None, campaign: str | None
) -> None:
    _keep(
        facts.firsts,
        {
            "lead_id": event.lead_id,
            "first_at": event.occurred_at,
            "first_event": event.event_id,
            "origin": origin,
            "source": source,
            "campaign": campaign,
        },
        (event.occurred_at, str(event.event_id)),
        newest=False,
    )


def facts_of(events: Iterable[Event]) -> Facts:
    """What analytics keeps of ``events``. No personal data is kept: no names, emails, notes,
    subjects or URLs."""
    facts = Facts()
    for e in events:
        if isinstance(e, FormSubmitted | EngagementRecorded | ActivityLogged):
            if isinstance(e, FormSubmitted):
                origin, kind = MARKETING, "form"
                source = e.utm.get("utm_source") or e.source_system
                campaign = e.utm.get("utm_campaign")
                actor = None
            elif isinstance(e, EngagementRecorded):
                origin, kind = MARKETING, e.engagement_type
                raw = e.properties.get("utm_source")
                source = str(raw) if raw else e.source_system
                campaign = e.campaign
                actor = None
            else:
                origin, kind, source, campaign = SALES, e.activity_type, e.source_system, None
                actor = e.actor_id
            facts.touches.append(
                {
                    "event_id": e.event_id,
                    "lead_id": e.lead_id,
                    "at": e.occurred_at,
                    "origin": origin,
                    "kind": kind,
                    "source": source,
                    "campaign": campaign,
                    "actor_id": actor,
                }
            )
            _first(facts, e, origin, source, campaign)
        elif isinstance(e, FeedbackReceived):
            minor = None if e.amount is None or not e.currency else to_minor(e.amount, e.currency)
            facts.feedback.append(
                {
                    "event_id": e.event_id,
                    "lead_id": e.lead_id,
                    "at": e.occurred_at,
                    "feedback": e.feedback,
                    "reason_code": e.reason_code,
                    "actor_id": e.actor_id,
                    "opportunity_id": e.opportunity_id,
                    "amount_minor": minor,
                    "currency": e.currency if minor is not None else None,
                }
            )
            _first(facts, e, SALES, e.source_system, None)
        elif isinstance(e, StageChanged):
            row = {
                "event_id": e.event_id,
                "lead_id": e.lead_id,
                "at": e.occurred_at,
                "cycle": e.cycle,
                "from_stage": e.from_stage.value if e.from_stage else None,
                "to_stage": e.to_stage.value,
                "actor": e.actor,
                "funnel_rank": FUNNEL.index(e.to_stage) if e.to_stage in FUNNEL else None,
                "next_at": None,
            }
            facts.stage_changes.append(row)
            order = stage_order(e.to_stage.value, e.cycle)
            _keep(
                facts.stages,
                {
                    "lead_id": e.lead_id,
                    "stage": e.to_stage.value,
                    "stage_at": e.occurred_at,
                    "stage_order": order,
                },
                (e.occurred_at, order),
                newest=True,
            )
        elif isinstance(e, LeadAssigned):
            row = {
                "event_id": e.event_id,
                "assignment_id": e.assignment_id,
                "lead_id": e.lead_id,
                "at": e.occurred_at,
                "stage": e.stage.value,
                "owner_id": e.owner.id,
                "team_id": e.team_id,
                "territory": e.territory,
                "segment": e.segment,
                "reassignment": e.reassignment,
            }
            facts.assignments.append(row)
            _keep(
                facts.owners,
                {
                    "lead_id": e.lead_id,
                    "assigned_at": e.occurred_at,
                    "assignment_event": e.event_id,
                    "owner_id": e.owner.id,
                    "team_id": e.team_id,
                    "territory": e.territory,
                    "segment": e.segment,
                },
                (e.occurred_at, str(e.event_id)),
                newest=True,
            )
        elif isinstance(e, SlaBreached):
            facts.breaches.append(
                {
                    "event_id": e.event_id,
                    "lead_id": e.lead_id,
                    "assignment_id": e.assignment_id,
                    "at": e.occurred_at,
                    "owner_id": e.owner_id,
                    "team_id": e.team_id,
                    "policy_id": e.policy_id,
                    "started_at": e.started_at,
                    "due_at": e.due_at,
                }
            )
    _next_entries(facts.stage_changes)
    return facts


def _next_entries(rows: list[dict[str, Any]]) -> None:
    """Each forward entry's ``next_at`` among ``rows`` alone: when its lead next entered a later
    forward stage (the writer takes the earlier of this and what is already stored)."""
    forward: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["funnel_rank"] is not None:
            forward.setdefault(row["lead_id"], []).append(row)
    for entries in forward.values():
        for row in entries:
            row["next_at"] = min(
                (
                    x["at"]
                    for x in entries
                    if x["at"] >= row["at"] and x["funnel_rank"] > row["funnel_rank"]
                ),
                default=None,
            )


# -- the planner: the reverse waterfall ---------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """A conversion rate measured on cohorts, with how many leads it rests on."""

    rate: float | None
    sample: int


@dataclass(frozen=True)
class PlanStage:
    stage: Stage
    needed: int
    run_rate: int
    gap: int
    rate_to_next: float | None
    rate_source: str | None  # given | measured
    sample: int | None


@dataclass(frozen=True)
class Plan:
    revenue_target: Decimal
    avg_deal_size: Decimal
    deal_size_source: str
    marketing_share: float
    window_days: int
    stages: tuple[PlanStage, ...]
    reasons: tuple[str, ...]


class PlanError(ValueError):
    """The plan cannot be made: a rate is zero or missing with nothing measured, or no deal
    size. ``field`` names the input to supply."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def plan(
    *,
    revenue_target: float,
    avg_deal_size: float | None,
    measured_deal_size: Decimal | None,
    marketing_share: float,
    window_days: int,
    rates: Mapping[str, float],
    measured: Mapping[str, Measured],
    run_rates: Mapping[Stage, int],
) -> Plan:
    """How many of each stage the revenue target needs: the deals it takes, divided by the
    product of the conversion rates below each stage, rounded up only at the end. A rate left
    out is the measured cohort conversion; a deal size left out is the measured average won
    amount. ``run_rates`` are the entries of each stage in the last ``window_days``."""
    reasons: list[str] = []
    if avg_deal_size is not None:
        deal, deal_source = Decimal(str(avg_deal_size)), "given"
    elif measured_deal_size is not None and measured_deal_size > 0:
        deal, deal_source = measured_deal_size, "measured"
        reasons.append(f"average deal size {deal} measured on won deals")
    else:
        raise PlanError("avg_deal_size", "no won deals measured: give avg_deal_size")
    if deal <= 0:
        raise PlanError("avg_deal_size", "avg_deal_size must be more than 0")
    deals = Decimal(str(revenue_target)) * Decimal(str(marketing_share)) / deal
    used: dict[str, tuple[Decimal, str, int | None]] = {}
    for name in RATE_NAMES:
        if name in rates:
            used[name] = (Decimal(str(rates[name])), "given", None)
        else:
            m = measured.get(name)
            if m is None or m.rate is None:
                raise PlanError(f"rates.{name}", f"{name} was not given and nothing measured")
            used[name] = (Decimal(str(m.rate)), "measured", m.sample)
            reasons.append(f"{name} {m.rate:.4f} measured on {m.sample} leads")
        if used[name][0] <= 0:
            raise PlanError(f"rates.{name}", f"{name} is 0: no number of leads reaches a deal")
    needed: dict[Stage, Decimal] = {Stage.WON: deals}
    for i in reversed(range(len(RATE_NAMES))):  # from the deals down to the inquiries
        needed[FUNNEL[i]] = needed[FUNNEL[i + 1]] / used[RATE_NAMES[i]][0]
    stages = []
    for i, stage in enumerate(FUNNEL):
        need = math.ceil(needed[stage])
        run = run_rates.get(stage, 0)
        rate = used[RATE_NAMES[i]] if i < len(RATE_NAMES) else None
        stages.append(
            PlanStage(
                stage=stage,
                needed=need,
                run_rate=run,
                gap=max(need - run, 0),
                rate_to_next=float(rate[0]) if rate else None,
                rate_source=rate[1] if rate else None,
                sample=rate[2] if rate else None,
            )
        )
    return Plan(
        revenue_target=Decimal(str(revenue_target)),
        avg_deal_size=deal,
        deal_size_source=deal_source,
        marketing_share=marketing_share,
        window_days=window_days,
        stages=tuple(stages),
        reasons=tuple(reasons),
    )


def conversion(reached: int, size: int) -> float | None:
    return round(reached / size, 6) if size else None


def mature(window_end: datetime, horizon: timedelta, now: datetime) -> bool:
    """Whether every lead of a cohort that entered before ``window_end`` has had the horizon
    to reach the next stage; a younger cohort's conversion can still grow."""
    return window_end + horizon <= now


# -- attribution -------------------------------------------------------------------------------

AttributionModel = Literal[
    "first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"
]
ATTRIBUTION_MODELS: tuple[AttributionModel, ...] = get_args(AttributionModel)
DECAY_HALF_LIFE = timedelta(days=7)
UNATTRIBUTED = "(no marketing touch)"


@dataclass(frozen=True)
class Touch:
    """A marketing touch of a lead, as attribution credits it."""

    at: datetime
    source: str | None
    campaign: str | None
    kind: str


@dataclass(frozen=True)
class Deal:
    """An amount to credit: an opportunity's (pipeline) or a won deal's (revenue).
    ``mql_at`` is the lead's latest MQL entry before it, ``opened_at`` its opportunity's
    creation (for W-shaped); either may be unknown."""

    lead_id: str
    at: datetime
    kind: str  # pipeline | revenue
    amount_minor: int
    currency: str
    mql_at: datetime | None = None
    opened_at: datetime | None = None
    event_id: uuid.UUID | None = None


def split(amount: int, weights: Sequence[Fraction | int]) -> list[int]:
    """``amount`` (minor units) in parts proportional to ``weights`` that sum to it exactly:
    each part rounded down, the units left over going to the largest remainders (the earlier
    part first on a tie). Computed on integers over the weights' common denominator, exactly as
    on the fractions and without their cost."""
    whole = _integers(weights)
    total = sum(whole)
    parts = [amount * w // total for w in whole]
    left = amount - sum(parts)
    order = sorted(range(len(whole)), key=lambda i: (-(amount * whole[i] % total), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def _integers(weights: Sequence[Fraction | int]) -> list[int]:
    """The weights in the same proportions, as integers."""
    common = math.lcm(*(w.denominator for w in weights))
    return [w.numerator * (common // w.denominator) for w in weights]


def _last_at_or_before(touches: Sequence[Touch], moment: datetime | None) -> int:
    if moment is None:
        return len(touches) - 1
    before = [i for i, t in enumerate(touches) if t.at <= moment]
    return before[-1] if before else 0


# Each model's shares in tenths: its named touches' shares, and what the others split.
_SHAPES = {"u_shaped": (4, 2), "w_shaped": (3, 1)}


@lru_cache(maxsize=4096)
def _shaped(count: int, named: tuple[int, ...], share: int, spread: int) -> tuple[int, ...]:
    """``share`` for each named position (adding up when one touch has two roles); the others
    split ``spread`` equally, or, when there are none, the named ones do. As integers in
    proportion: every share is multiplied by the number that split the spread."""
    rest = [i for i in range(count) if i not in named]
    sharing = set(rest or named)
    k = len(sharing)
    return tuple(share * k * named.count(i) + spread * (i in sharing) for i in range(count))


def _weights(model: str, touches: Sequence[Touch], deal: Deal) -> list[int]:
    """Each touch's share of ``deal`` under ``model``, as integers in proportion."""
    n = len(touches)
    if model == "first_touch":
        return [1] + [0] * (n - 1)
    if model == "last_touch":  # the last touch before the lead became an MQL
        last = _last_at_or_before(touches, deal.mql_at)
        return [int(i == last) for i in range(n)]
    if model == "linear":
        return [1] * n
    if model == "time_decay":
        half = DECAY_HALF_LIFE.total_seconds()
        # 2^-age as exact binary fractions over their common (power of two) denominator
        ratios = [
            (2 ** (-(deal.at - t.at).total_seconds() / half)).as_integer_ratio() for t in touches
        ]
        common = max(den for _, den in ratios)
        return [num * (common // den) for num, den in ratios]
    created = next((i for i, t in enumerate(touches) if t.kind == "form"), 0)
    if model == "u_shaped":
        return list(_shaped(n, (0, created), *_SHAPES[model]))
    if model == "w_shaped":
        opened = _last_at_or_before(touches, deal.opened_at or deal.at)
        return list(_shaped(n, (0, created, opened), *_SHAPES[model]))
    raise ValueError(f"unknown attribution model {model!r}")


def attribution_weights(model: str, touches: Sequence[Touch], deal: Deal) -> list[Fraction]:
    """Each touch's share of ``deal`` under ``model``; ``touches`` are the lead's marketing
    touches up to the deal, oldest first (at least one). The shares sum to one."""
    weights = _weights(model, touches, deal)
    total = sum(weights)
    return [Fraction(w, total) for w in weights]


def attribute(
    model: str, deals: Iterable[Deal], touches: Mapping[str, Sequence[Touch]], by: str
) -> dict[tuple[str, str, str | None], int]:
    """Per (currency, pipeline|revenue, the touch's ``by``: source or campaign): the minor units
    ``model`` credits. Every deal's amount is credited whole: a deal with no marketing touch
    before it goes to ``UNATTRIBUTED``."""
    out: dict[tuple[str, str, str | None], int] = {}
    for deal in deals:
        before = [t for t in touches.get(deal.lead_id, ()) if t.at <= deal.at]
        if not before:
            key = (deal.currency, deal.kind, UNATTRIBUTED)
            out[key] = out.get(key, 0) + deal.amount_minor
            continue
        parts = split(deal.amount_minor, _weights(model, before, deal))
        for touch, part in zip(before, parts, strict=True):
            key = (deal.currency, deal.kind, getattr(touch, by))
            out[key] = out.get(key, 0) + part
    return out


ATTRIBUTION_KEYS = ("source", "campaign")


def credits(deals: Iterable[Deal], touches: Mapping[str, Sequence[Touch]]) -> list[dict[str, Any]]:
    """Each deal's amount credited under every model, by source and by campaign: the rows the
    attribution report sums (``key`` None where the touch names none)."""
    rows = []
    for deal in deals:
        for model in ATTRIBUTION_MODELS:
            for by in ATTRIBUTION_KEYS:
                for (currency, kind, key), amount in attribute(model, [deal], touches, by).items():
                    rows.append(
                        {
                            "deal_event": deal.event_id,
                            "model": model,
                            "by": by,
                            "key": key,
                            "lead_id": deal.lead_id,
                            "at": deal.at,
                            "kind": kind,
                            "currency": currency,
                            "amount_minor": amount,
                        }
                    )
    return rows
