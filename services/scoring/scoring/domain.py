"""Pure scoring: fit, decaying engagement and the stage machine. No I/O, no clock: ``now`` is
always passed in, so the same profile, event, model and ``now`` always give the same decision.

Promises the tests hold us to:

* fit and engagement scores are never negative, and each engagement rule stays within its cap;
* applying an event twice changes nothing the second time (hits are keyed by event id);
* the scores depend on the set of events and ``now``, not on the order events arrived in;
* every stage change is checked against ``TRANSITIONS`` (which actor may make it) and carries
  reasons; a forbidden change is reported, never applied.
"""

from __future__ import annotations

import uuid
from bisect import insort
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from math import exp
from typing import Any, Final, NamedTuple

from typing_extensions import TypeIs

from leadrelay_shared.contracts import (
    EngagementRecorded,
    Event,
    FeedbackReceived,
    FormSubmitted,
    LeadSnapshot,
    Reason,
    Stage,
)

from .model import FORM_FILL, GRADES, FitRule, ScoringModel


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
    source: frozenset(to for (fr, to) in TRANSITIONS if fr == source)
    for source in (None, *Stage)
}
FORWARD = (Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.WON)
QUALIFIABLE = frozenset({Stage.INQUIRY, Stage.NURTURE, Stage.RECYCLED})
ERASED_KEEPS = ("company", "country", "region", "company_size", "industry", "is_free_email")
PRUNE_AFTER_HALF_LIVES = 10


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


class Hit(NamedTuple):
    """One engagement rule matched by one event: its full points, decayed from ``ts`` (the
    event's time in epoch seconds). A profile keeps its hits sorted (by time, event, rule), so
    sums run in one canonical order whatever order the events arrived in."""

    ts: float
    event_id: str
    rule_id: str
    points: int


@dataclass(init=False)
class Part:
    """One line of a score's explanation. A class with a written-out constructor, like
    ``EngagementLine``: compiled, building one (a scored form builds one per rule that holds)
    is native."""

    rule_id: Final[str]
    points: Final[int]
    message: Final[str]
    event_id: Final[uuid.UUID | str | None]

    def __init__(self, rule_id: str, points: int, message: str,
                 event_id: uuid.UUID | str | None) -> None:
        self.rule_id = rule_id
        self.points = points
        self.message = message
        self.event_id = event_id


@dataclass(init=False)
class EngagementLine:
    """One engagement rule's share of the score; the sentence is built only when asked for.

    A class with a written-out constructor, not a NamedTuple: compiled (``make native``),
    building one is native instead of a call of ``tuple.__new__``, and a scored event builds
    one per engaged rule."""

    rule_id: Final[str]
    points: Final[int]
    hits: Final[int]  # how many hits of the rule are in the value
    value: Final[float]
    cap: Final[int | None]
    label: Final[str]
    event_id: Final[str]

    def __init__(self, rule_id: str, points: int, hits: int, value: float, cap: int | None,
                 label: str, event_id: str) -> None:
        self.rule_id = rule_id
        self.points = points
        self.hits = hits
        self.value = value
        self.cap = cap
        self.label = label
        self.event_id = event_id

    @property
    def message(self) -> str:
        cap = f", cap {self.cap}" if self.cap is not None else ""
        return f"{self.hits} × {self.label}: {self.value:.1f} after decay{cap}"


@dataclass(init=False)
class RuleSum:
    """One rule's share of ``HitSums``: the sum, how many hits it adds up, the last one's
    event. A class with a written-out constructor: compiled, its float is stored unboxed and
    read without a tuple's unboxing checks, once per rule and decision."""

    total: Final[float]
    count: Final[int]
    last: Final[str]

    def __init__(self, total: float, count: int, last: str) -> None:
        self.total = total
        self.count = count
        self.last = last


@dataclass(init=False)
class HitSums:
    """The hits' per-rule sums, anchored at the first hit's time: for each rule, the sum in
    canonical order of ``points × e^(λ(ts − anchor))``, the number of hits and the last hit's
    event. A rule's decayed value at ``now`` is its sum × ``e^(−λ(now − anchor))``.

    Built left to right over the sorted hits; a hit that sorts after every other one is added to
    the sums as they are, which is exactly what rebuilding them would give (same additions in the
    same order), so the scores stay a function of the set of events. Anything else (a late event
    sorting earlier, pruning, a recycle, another half-life) rebuilds them."""

    rate: Final[float]  # λ = ln 2 / half-life, per second
    first: Final[Hit]  # the anchor is its time
    last: Final[Hit]
    size: Final[int]  # how many hits they cover
    by_rule: Final[dict[str, RuleSum]]  # rule id → its sum

    def __init__(self, rate: float, first: Hit, last: Hit, size: int,
                 by_rule: dict[str, RuleSum]) -> None:
        self.rate = rate
        self.first = first
        self.last = last
        self.size = size
        self.by_rule = by_rule


def covers(sums: HitSums, hits: tuple[Hit, ...], model: ScoringModel) -> bool:
    """Whether ``sums`` are the sums of ``hits`` under ``model``'s half-life (hits only ever
    gain newer hits or lose their oldest, so the ends and the length tell)."""
    return (sums.rate == model.decay_rate and len(hits) == sums.size
            and hits[0] == sums.first and hits[-1] == sums.last)


def hit_sums(hits: tuple[Hit, ...], model: ScoringModel,
             previous: HitSums | None = None) -> HitSums | None:
    """The sums for ``hits``: extended from ``previous`` when ``hits`` are its hits followed by
    newer ones (or the same sums when there are none), else rebuilt. None when the hits span
    too long to anchor (then ``engagement`` decays every hit on its own)."""
    if not hits:
        return None
    rate = model.decay_rate
    n = previous.size if previous is not None else 0
    if (previous is not None and previous.rate == rate and n <= len(hits)
            and hits[0] == previous.first and hits[n - 1] == previous.last):
        if n == len(hits):
            return previous
        by_rule, start = dict(previous.by_rule), n
    else:
        by_rule, start = {}, 0
    anchor = hits[0].ts
    if (hits[-1].ts - anchor) * rate > 600:  # e^600 nears the float range: do not anchor
        return None
    for ts, event_id, rule_id, points in hits[start:]:
        weight = points * exp(rate * (ts - anchor))
        found = by_rule.get(rule_id)
        by_rule[rule_id] = RuleSum(weight, 1, event_id) if found is None else RuleSum(
            found.total + weight, found.count + 1, event_id)
    return HitSums(rate, hits[0], hits[-1], len(hits), by_rule)


_last_now: tuple[datetime, float] | None = None


def epoch_seconds(now: datetime) -> float:
    """``now.timestamp()``, remembered for the last ``now`` asked about: a batch of events is
    decided at one ``now``, and an aware datetime's timestamp takes a timedelta's arithmetic.
    Held by reference (so never confused with another object at the same address) and
    immutable, so the remembered value is always the right one."""
    global _last_now
    last = _last_now
    if last is not None and last[0] is now:
        return last[1]
    ts = now.timestamp()
    _last_now = (now, ts)
    return ts


def uuid_text(u: uuid.UUID) -> str:
    """``str(u)``, formatted here: ``UUID.__str__`` is interpreted, and compiled this is a few
    native slices of one hexadecimal number (``hex``: a format spec costs more to parse)."""
    h = hex(u.int)[2:]
    if len(h) < 32:
        h = "0" * (32 - len(h)) + h
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


NO_SNAPSHOT = LeadSnapshot()


@dataclass(init=False)
class LeadProfile:
    """A lead as scoring keeps it. Immutable: every change is a new profile (``_evolve``, or
    the constructor on the hot path). The fields are ``Final``: mypy refuses an assignment
    anywhere but ``__init__``, and compiled (``make native``) so does the runtime. The
    constructor is written out, not generated, so that compiled it is a native one."""

    lead_id: Final[str]
    snapshot: Final[LeadSnapshot]
    snapshot_at: Final[datetime | None]
    stage: Final[Stage | None]
    stage_entered_at: Final[datetime | None]
    fit_score: Final[int]
    fit_grade: Final[str]
    engagement_score: Final[int]
    hits: Final[tuple[Hit, ...]]
    engagement_since: Final[datetime | None]
    cycle: Final[int]
    erased_at: Final[datetime | None]
    form_fills: Final[int]
    fit_parts: Final[tuple[Part, ...]]
    fit_version: Final[str | None]  # the model version ``fit_parts`` were computed with
    sums: HitSums | None = field(compare=False, repr=False)
    """Derived from ``hits`` (never stored): per-rule sums that make the next score O(rules)."""

    def __init__(self, lead_id: str, snapshot: LeadSnapshot = NO_SNAPSHOT,
                 snapshot_at: datetime | None = None, stage: Stage | None = None,
                 stage_entered_at: datetime | None = None, fit_score: int = 0,
                 fit_grade: str = "F", engagement_score: int = 0, hits: tuple[Hit, ...] = (),
                 engagement_since: datetime | None = None, cycle: int = 0,
                 erased_at: datetime | None = None, form_fills: int = 0,
                 fit_parts: tuple[Part, ...] = (), fit_version: str | None = None,
                 sums: HitSums | None = None) -> None:
        self.lead_id = lead_id
        self.snapshot = snapshot
        self.snapshot_at = snapshot_at
        self.stage = stage
        self.stage_entered_at = stage_entered_at
        self.fit_score = fit_score
        self.fit_grade = fit_grade
        self.engagement_score = engagement_score
        self.hits = hits
        self.engagement_since = engagement_since
        self.cycle = cycle
        self.erased_at = erased_at
        self.form_fills = form_fills
        self.fit_parts = fit_parts
        self.fit_version = fit_version
        self.sums = sums


def _evolve(p: LeadProfile, **changes: Any) -> LeadProfile:
    """A copy of ``p`` with ``changes`` (stage moves; the scored profile is built directly)."""
    return replace(p, **changes)


_tuple_new = tuple.__new__  # builds a NamedTuple without its keyword-handling ``__new__``


@dataclass(init=False)
class Decision:
    """What an event did to a lead: the new profile (None: nothing to keep), the explanation of
    its scores, the stage changes made, and any change that was asked for but refused."""

    profile: Final[LeadProfile | None]
    fit_parts: Final[tuple[Part, ...]]
    engagement_parts: Final[tuple[EngagementLine, ...]]
    transitions: Final[tuple[Transition, ...]]
    refused: Final[tuple[Reason, ...]]
    score_changed: Final[bool]
    ignored: Final[Reason | None]

    def __init__(self, profile: LeadProfile | None, fit_parts: tuple[Part, ...] = (),
                 engagement_parts: tuple[EngagementLine, ...] = (),
                 transitions: tuple[Transition, ...] = (), refused: tuple[Reason, ...] = (),
                 score_changed: bool = False, ignored: Reason | None = None) -> None:
        self.profile = profile
        self.fit_parts = fit_parts
        self.engagement_parts = engagement_parts
        self.transitions = transitions
        self.refused = refused
        self.score_changed = score_changed
        self.ignored = ignored


def transition(current: Stage | None, target: Stage, actor: Actor,
               reasons: tuple[Reason, ...]) -> Transition:
    """A checked stage change; a forbidden one raises ``TransitionRejected``, never applies."""
    allowed = TRANSITIONS.get((current, target))
    if allowed is None:
        raise TransitionRejected(Reason(
            rule_id="stage.forbidden",
            message=f"a lead cannot move from {current or 'nothing'} to {target}"))
    if actor not in allowed:
        who = " or ".join(sorted(allowed))
        raise TransitionRejected(Reason(
            rule_id="stage.wrong_actor",
            message=f"{current or 'nothing'} → {target} is made by {who}, not by {actor}"))
    return Transition(current, target, actor, reasons)


# -- scores ------------------------------------------------------------------------------------

_RANK: Final[dict[str, int]] = {g: i for i, g in enumerate(GRADES)}


def grade(model: ScoringModel, fit_score: int) -> str:
    """The fit grade of a score: the first grade whose minimum it reaches, else F."""
    for name, floor in model.grades:
        if fit_score >= floor:
            return name
    return "F"


def grade_at_least(grade: str, minimum: str) -> bool:
    return _RANK[grade] <= _RANK[minimum]


def fit_matches(model: ScoringModel, snapshot: LeadSnapshot) -> list[FitRule]:
    """The fit rules that hold for ``snapshot``, in the model's order."""
    fit_rules = model.fit_rules
    return [fit_rules[i] for i in fit_held(model, snapshot)]


def fit_held(model: ScoringModel, snapshot: LeadSnapshot) -> list[int]:
    """The places in ``model.fit_rules`` of the rules that hold for ``snapshot``, in order.
    Every rule tests one field, so a lead's fit is one lookup per field
    (``ScoringModel.fit_memo``, filled by ``ScoringModel.fit_held``); a lead without an email
    domain says nothing about free mail."""
    held: list[int] = []
    values = snapshot.__dict__  # a snapshot's fields are plain values
    memo = model.fit_memo
    for name in model.fit_fields:
        raw = values[name]
        if name == "is_free_email" and not values["email_domain"]:
            raw = None
        found = memo.get((name, raw))  # the memo's usual hit, without a call into the model
        held.extend(found if found is not None else model.fit_held(name, raw))
    held.sort()
    return held


def fit(snapshot: LeadSnapshot, model: ScoringModel, event_id: uuid.UUID | None
        ) -> tuple[int, tuple[Part, ...]]:
    """Who they are: every fit rule that holds adds its points; the total is at least 0."""
    lines = model.fit_lines
    parts: list[Part] = []
    total = 0
    for i in fit_held(model, snapshot):
        rule_id, points, message = lines[i]
        parts.append(Part(rule_id, points, message, event_id))
        total += points
    return (total if total > 0 else 0), tuple(parts)


def engagement(hits: tuple[Hit, ...], model: ScoringModel, now: datetime,
               sums: HitSums | None = None, now_ts: float | None = None
               ) -> tuple[int, tuple[EngagementLine, ...]]:
    """What they did, at ``now``: each hit halves in value every half-life; each rule's sum is
    capped; the total is at least 0.

    With every hit in the past, a rule's value is its anchored sum (``HitSums``, given or built
    here) times one decay factor: O(rules) once the sums exist. A hit in the future (a late
    clock) is worth its points, undecayed, so then each hit is decayed on its own. ``now_ts``
    is ``now`` in epoch seconds, when the caller has it."""
    if now_ts is None:
        now_ts = now.timestamp()
    totals: dict[str, RuleSum] | None = None
    factor = 1.0
    if hits and hits[-1].ts <= now_ts:
        if sums is None or not covers(sums, hits, model):
            sums = hit_sums(hits, model)
        if sums is not None:
            factor = exp(-sums.rate * (now_ts - sums.first.ts))
            totals = sums.by_rule
    if hits and totals is None:
        totals = {}
        neg_rate = -model.decay_rate
        for ts, event_id, rule_id, points in hits:  # canonical order: reproducible sums
            age = now_ts - ts
            value = points * exp(neg_rate * age) if age > 0 else float(points)
            found = totals.get(rule_id)
            totals[rule_id] = RuleSum(value, 1, event_id) if found is None else RuleSum(
                found.total + value, found.count + 1, event_id)
    if not totals:
        return 0, ()
    lines: list[EngagementLine] = []
    score = 0
    for rule_id, cap, ceiling, label in model.engagement_lines:
        found = totals.get(rule_id)
        if found is None:
            continue
        total = found.total * factor
        if total > ceiling:
            total = ceiling
        elif total < -ceiling:
            total = -ceiling
        points = round_half_even(total)
        if points:
            score += points
            lines.append(EngagementLine(rule_id, points, found.count, total, cap, label,
                                        found.last))
    return (score if score > 0 else 0), tuple(lines)


def fit_lines_data(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    """The fit explanation as plain data, as ``lead.scored`` and the timeline carry it: rule id,
    points, sentence and the cause's event id as text (formatted once: a fit's parts share their
    cause)."""
    out: list[dict[str, Any]] = []
    cause: object = None
    text: str | None = None
    for x in parts:
        if x.event_id is not cause:
            cause = x.event_id
            text = (x.event_id or None) if not isinstance(x.event_id, uuid.UUID) \
                else uuid_text(x.event_id)
        out.append({"rule_id": x.rule_id, "points": x.points, "message": x.message,
                    "event_id": text})
    return out


def engagement_lines_data(lines: tuple[EngagementLine, ...]) -> list[dict[str, Any]]:
    """The engagement explanation as plain data (as ``fit_lines_data``)."""
    return [{"rule_id": x.rule_id, "points": x.points, "message": x.message,
             "event_id": x.event_id or None} for x in lines]


def round_half_even(x: float) -> int:
    """``round(x)`` of a finite float (a half goes to the even neighbour), in arithmetic that
    compiles to C instead of a call of the builtin. ``x - int(x)`` is exact for any float below
    2**52, so the test for a half is exact too."""
    i = int(x)
    frac = x - i
    if frac > 0.5 or (frac == 0.5 and i % 2 != 0):
        return i + 1
    if frac < -0.5 or (frac == -0.5 and i % 2 != 0):
        return i - 1
    return i


Doing = tuple[str, str, str | None, Mapping[str, object]]  # kind, url (lower case), campaign, props


def hits_for(event: FormSubmitted | EngagementRecorded, model: ScoringModel,
             doing: Doing | None = None, event_id: str | None = None,
             ts: float | None = None) -> tuple[Hit, ...]:
    kind, url, campaign, props = doing or _engagement_of(event)
    if ts is None:
        ts = event.occurred_at.timestamp()
    event_id = event_id or str(event.event_id)
    found = []
    for rule_id, points, url_contains, rule_campaign, properties in \
            model.engagement_tests.get(kind, ()):
        if url_contains and url_contains not in url:
            continue
        if rule_campaign and rule_campaign != campaign:
            continue
        if properties and any(props.get(k) != v for k, v in properties):
            continue
        found.append(_tuple_new(Hit, (ts, event_id, rule_id, points)))
    return tuple(found)  # sorted: one time and event, and the tests come sorted by rule id


def _is_form(event: FormSubmitted | EngagementRecorded) -> TypeIs[FormSubmitted]:
    """``isinstance(event, FormSubmitted)``, without ABCMeta's check for the two exact types."""
    kind = type(event)
    return kind is FormSubmitted or (kind is not EngagementRecorded
                                     and isinstance(event, FormSubmitted))


def _engagement_of(event: FormSubmitted | EngagementRecorded) -> Doing:
    if _is_form(event):
        return FORM_FILL, (event.page_url or "").lower(), event.utm.get("utm_campaign"), {}
    return event.engagement_type, (event.url or "").lower(), event.campaign, event.properties


def add_hits(hits: tuple[Hit, ...], new: tuple[Hit, ...], since: datetime | None,
             now: datetime, model: ScoringModel, now_ts: float | None = None
             ) -> tuple[Hit, ...]:
    """The sorted hits with ``new`` added, less those that can no longer count: before
    ``since`` (a recycle), or so old they are worth under 0.1% of their points; at most
    ``max_hits`` are kept, the newest."""
    if not new:
        merged = hits
    elif not hits or new[0] > hits[-1]:  # the usual case: the newest event so far
        merged = hits + new
    else:
        as_list = list(hits)
        for hit in new:
            insort(as_list, hit)
        merged = tuple(as_list)
    if now_ts is None:
        now_ts = now.timestamp()
    horizon = now_ts - model.half_life_s * PRUNE_AFTER_HALF_LIVES
    if since is not None:
        since_ts = since.timestamp()
        if since_ts > horizon:
            horizon = since_ts
    start = _first_at(merged, horizon, "")
    keep_from = len(merged) - model.max_hits
    if keep_from > start:
        start = keep_from
    return merged[start:] if start > 0 else merged


def seen(hits: tuple[Hit, ...], event_id: str, ts: float) -> bool:
    """Whether an event already left hits (a redelivery): hits sort by time, then event, so
    the first hit at or after ``(ts, event_id)`` is one of its hits if it left any."""
    i = _first_at(hits, ts, event_id)
    return i < len(hits) and hits[i].ts == ts and hits[i].event_id == event_id


def _first_at(hits: tuple[Hit, ...], ts: float, event_id: str) -> int:
    """``bisect_left(hits, (ts, event_id))``: the place of the first hit at or after time
    ``ts`` and event ``event_id``. Written out, so that compiled it compares unboxed floats and
    strings instead of calling ``bisect`` to compare tuples."""
    lo, hi = 0, len(hits)
    while lo < hi:
        mid = (lo + hi) // 2
        hit = hits[mid]
        if hit.ts < ts or (hit.ts == ts and hit.event_id < event_id):
            lo = mid + 1
        else:
            hi = mid
    return lo


# -- events ------------------------------------------------------------------------------------

def apply(profile: LeadProfile | None, event: Event, model: ScoringModel, now: datetime
          ) -> Decision:
    """Apply one intake event to a lead (``None``: scoring has not seen it yet)."""
    if profile and profile.erased_at and event.occurred_at <= profile.erased_at:
        return Decision(profile=None, ignored=Reason(
            rule_id="erasure.predates", message="event is older than the lead's erasure"))
    # exact types first: isinstance of a pydantic model is a call of ABCMeta.__instancecheck__
    if type(event) is EngagementRecorded or type(event) is FormSubmitted:
        return on_engagement(profile, event, model, now)
    if isinstance(event, FeedbackReceived):
        return on_feedback(profile, event, model, now)
    if isinstance(event, (FormSubmitted, EngagementRecorded)):
        return on_engagement(profile, event, model, now)
    return Decision(profile=None)


def merge_snapshot(profile: LeadProfile, new: LeadSnapshot, at: datetime
                   ) -> tuple[LeadSnapshot, datetime | None]:
    """Newer non-empty values win; an older (late) event only fills what is still missing."""
    old, old_at = profile.snapshot, profile.snapshot_at
    # a snapshot's fields are plain values: its __dict__ is what model_dump() would build
    updates = {k: v for k, v in new.__dict__.items() if v not in (None, "")}
    if old_at is not None and at < old_at:
        current = old.__dict__
        updates = {k: v for k, v in updates.items() if current.get(k) in (None, "")}
        return snapshot_with(old, updates), old_at
    if not new.email_domain:
        updates.pop("is_free_email", None)
    return snapshot_with(old, updates), at


_set_attribute = object.__setattr__


def snapshot_with(old: LeadSnapshot, updates: dict[str, Any]) -> LeadSnapshot:
    """``old.model_copy(update=updates)``: the same shallow copy pydantic makes (its fields
    dict, with no extra or private values, and the fields given), built here because
    pydantic's is interpreted (``copy.copy`` of each part). Like ``model_copy``, the values are
    not validated again: they come from validated snapshots. A test holds the two equal."""
    values = dict(old.__dict__)
    values.update(updates)
    copied = LeadSnapshot.__new__(LeadSnapshot)
    _set_attribute(copied, "__dict__", values)
    _set_attribute(copied, "__pydantic_extra__", None)
    _set_attribute(copied, "__pydantic_fields_set__", old.__pydantic_fields_set__ | updates.keys())
    _set_attribute(copied, "__pydantic_private__", None)
    return copied


def on_engagement(profile: LeadProfile | None, event: FormSubmitted | EngagementRecorded,
                  model: ScoringModel, now: datetime) -> Decision:
    base = profile or LeadProfile(lead_id=event.lead_id)
    event_id, ts = uuid_text(event.event_id), event.occurred_at.timestamp()
    if base.hits and seen(base.hits, event_id, ts):
        return Decision(profile=None, ignored=Reason(
            rule_id="event.duplicate", message="event already counted"))
    snapshot, snapshot_at = base.snapshot, base.snapshot_at
    is_form = _is_form(event)
    if _is_form(event):
        snapshot, snapshot_at = merge_snapshot(base, event.lead, event.occurred_at)
    elif event.email_domain and not snapshot.email_domain:
        snapshot = snapshot_with(snapshot, {"email_domain": event.email_domain})
    # a snapshot's fields are its __dict__, and all pydantic's == compares of it: the same
    # test without a call of BaseModel.__eq__
    if profile is None or base.fit_version != model.version or (
            snapshot is not base.snapshot and snapshot.__dict__ != base.snapshot.__dict__):
        fit_score, fit_parts = fit(snapshot, model, event.event_id)
    else:  # who they are did not change: the fit explanation stands, with its own cause
        fit_score, fit_parts = base.fit_score, base.fit_parts
    doing = _engagement_of(event)
    now_ts = epoch_seconds(now)
    hits = add_hits(base.hits, hits_for(event, model, doing, event_id, ts),
                    base.engagement_since, now, model, now_ts)
    sums = hit_sums(hits, model, base.sums)
    eng_score, eng_parts = engagement(hits, model, now, sums, now_ts)
    scored = LeadProfile(base.lead_id, snapshot, snapshot_at, base.stage, base.stage_entered_at,
                         fit_score, grade(model, fit_score), eng_score, hits,
                         base.engagement_since, base.cycle, base.erased_at,
                         base.form_fills + is_form, fit_parts, model.version, sums)
    moves = _qualify(scored, doing, model, fit_parts, eng_parts)
    changed = profile is None or (fit_score, scored.fit_grade, eng_score) != (
        base.fit_score, base.fit_grade, base.engagement_score)
    return _decided(_moved(scored, moves, now), fit_parts, eng_parts, moves, changed)


def _decided(profile: LeadProfile, fit_parts: tuple[Part, ...],
             engagement_parts: tuple[EngagementLine, ...], transitions: tuple[Transition, ...],
             score_changed: bool) -> Decision:
    """The decision of a scored event."""
    return Decision(profile, fit_parts, engagement_parts, transitions, (), score_changed, None)


def _qualify(p: LeadProfile, doing: Doing, model: ScoringModel,
             fit_parts: tuple[Part, ...], eng_parts: tuple[EngagementLine, ...]
             ) -> tuple[Transition, ...]:
    moves: list[Transition] = []
    stage = p.stage
    kind, url, _, _ = doing
    if stage is None:
        moves.append(transition(None, Stage.INQUIRY, M, (Reason(
            rule_id="stage.first_touch",
            message=f"first known contact: {kind.replace('_', ' ')}"),)))
        stage = Stage.INQUIRY
    if stage not in QUALIFIABLE:
        return tuple(moves)
    lane = None
    for f in model.fast_lanes:
        if f.event == kind and grade_at_least(p.fit_grade, f.min_grade) and (
                f.url_contains is None or f.url_contains in url):
            lane = f
            break
    if lane is not None:
        fit_line = _fit_line(p, fit_parts)
        why = (Reason(rule_id=lane.id, message=f"fast lane: {kind.replace('_', ' ')} from a "
                      f"grade {p.fit_grade} lead (lane needs {lane.min_grade} or better)"),
               Reason(rule_id="mql.fit", message=fit_line))
        moves.append(transition(stage, Stage.MQL, M, why))
    elif grade_at_least(p.fit_grade, model.mql_min_grade) and \
            p.engagement_score >= model.mql_min_engagement:
        fit_line = _fit_line(p, fit_parts)
        since = " since it was recycled" if stage is Stage.RECYCLED else ""
        why = (Reason(rule_id="mql.fit", message=f"{fit_line}, needs {model.mql_min_grade} "
                      "or better"),
               Reason(rule_id="mql.engagement", message=f"engagement {p.engagement_score}{since}"
                      f" reached {model.mql_min_engagement} (" +
                      ", ".join(x.message for x in eng_parts) + ")"))
        moves.append(transition(stage, Stage.MQL, M, why))
    return tuple(moves)


def _fit_line(p: LeadProfile, fit_parts: tuple[Part, ...]) -> str:
    return f"fit {p.fit_score} (grade {p.fit_grade}: " + \
        ", ".join(x.message for x in fit_parts) + ")"


def _moved(p: LeadProfile, moves: tuple[Transition, ...], now: datetime) -> LeadProfile:
    """The profile after its stage changes: a new MQL starts a new pass through the funnel; a
    recycle resets the engagement baseline, so re-qualifying takes new engagement."""
    for move in moves:
        p = _evolve(p, stage=move.to_stage, stage_entered_at=now)
        if move.to_stage is Stage.MQL:
            p = _evolve(p, cycle=p.cycle + 1)
        if move.to_stage is Stage.RECYCLED:
            p = _evolve(p, engagement_since=now, hits=(), sums=None, engagement_score=0)
    return p


FEEDBACK_TARGETS: dict[str, tuple[Stage, ...]] = {
    "accepted": (Stage.SAL,), "disqualified": (Stage.DISQUALIFIED,),
    "converted": (Stage.SQL,), "won": (Stage.WON,), "lost": (Stage.LOST,),
}


def on_feedback(profile: LeadProfile | None, event: FeedbackReceived, model: ScoringModel,
                now: datetime) -> Decision:
    """Sales' word moves the lead: accept → SAL, reject → Recycled or Disqualified (by reason),
    convert → SQL (and Opportunity with an opportunity id), won / lost close it."""
    targets = _targets(event, model)
    current = profile.stage if profile else None
    steps: list[Stage] = []
    for target in targets:
        start = steps[-1] if steps else current
        steps.extend(_path(start, target))
    if not steps:
        return Decision(profile=None, ignored=Reason(
            rule_id="feedback.no_change", message=f"lead is already {current}"))
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


def _path(current: Stage | None, target: Stage) -> list[Stage]:
    """Forward moves may skip stages sales does not record (accepted and converted at once)."""
    if current == target:
        return []
    if current in FORWARD and target in FORWARD and \
            FORWARD.index(current) < FORWARD.index(target):
        return list(FORWARD[FORWARD.index(current) + 1:FORWARD.index(target) + 1])
    return [target]


def _feedback_reason(event: FeedbackReceived, model: ScoringModel) -> Reason:
    who = f" by {event.actor_id}" if event.actor_id else ""
    if event.feedback == "rejected":
        code = event.reason_code or "other"
        end = ("disqualified" if code in model.disqualify_reasons
               else "recycled to marketing nurture")
        return Reason(rule_id=f"feedback.rejected.{code}",
                      message=f"rejected{who} ({code.replace('_', ' ')}): {end}")
    if event.feedback == "disqualified":
        code = event.reason_code or "other"
        return Reason(rule_id=f"feedback.disqualified.{code}",
                      message=f"disqualified{who} ({code.replace('_', ' ')})")
    extra = f", opportunity {event.opportunity_id}" if event.opportunity_id else ""
    return Reason(rule_id=f"feedback.{event.feedback}", message=f"{event.feedback}{who}{extra}")


# -- time and erasure --------------------------------------------------------------------------

def on_time(profile: LeadProfile, model: ScoringModel, now: datetime) -> Decision:
    """Moves made by time alone: an MQL never accepted is recycled, an inquiry that never
    qualified joins nurture, a lost deal is recycled after a while."""
    rules = {Stage.MQL: (model.mql_unaccepted_recycle, Stage.RECYCLED, "not accepted by sales"),
             Stage.INQUIRY: (model.inquiry_nurture, Stage.NURTURE, "did not qualify"),
             Stage.LOST: (model.lost_recycle, Stage.RECYCLED, "lost")}
    rule = rules.get(profile.stage) if profile.stage else None
    if rule is None or profile.stage_entered_at is None:
        return Decision(profile=None)
    after, target, what = rule
    if after is None or now < profile.stage_entered_at + after:
        return Decision(profile=None)
    days = after.total_seconds() / 86400
    move = transition(profile.stage, target, T, (Reason(
        rule_id=f"timer.{profile.stage}_to_{target}",
        message=f"{what} within {days:g} days of becoming {profile.stage}"),))
    return Decision(profile=_moved(profile, (move,), now), transitions=(move,))


def due_after(model: ScoringModel) -> dict[Stage, float]:
    """Seconds after which each timed stage is due for ``on_time`` (for the sweep's query)."""
    pairs = ((Stage.MQL, model.mql_unaccepted_recycle), (Stage.INQUIRY, model.inquiry_nurture),
             (Stage.LOST, model.lost_recycle))
    return {stage: after.total_seconds() for stage, after in pairs if after is not None}


def erase(profile: LeadProfile, now: datetime) -> LeadProfile:
    """Personal fields go; scores, stage and firmographics stay, so funnel reports still add up."""
    kept = {k: getattr(profile.snapshot, k) for k in ERASED_KEEPS}
    return replace(profile, snapshot=LeadSnapshot(**kept), erased_at=now)
