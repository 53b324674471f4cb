"""What the lead did: engagement rules matched by events, decaying with the model's half-life.

A profile keeps its hits sorted by (time, event, rule), so sums run in one canonical order
whatever order the events arrived in, and the scores stay a function of the set of events.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Mapping
from datetime import datetime
from math import exp
from typing import NamedTuple

from leadrelay_shared.contracts import EngagementRecorded, FormSubmitted

from ..config import FORM_FILL, ScoringModel

PRUNE_AFTER_HALF_LIVES = 10
Doing = tuple[str, str, str | None, Mapping[str, object]]  # kind, url (lower case), campaign, props


class Hit(NamedTuple):
    """One engagement rule matched by one event: its full points, decayed from ``ts`` (the
    event's time in epoch seconds)."""

    ts: float
    event_id: str
    rule_id: str
    points: int


class EngagementLine(NamedTuple):
    """One engagement rule's share of the score; the sentence is built only when asked for.
    Tuples, as hits are: a scored event makes one per engaged rule."""

    rule_id: str
    points: int
    hits: int  # how many hits of the rule are in the value
    value: float
    cap: int | None
    label: str
    event_id: str

    @property
    def message(self) -> str:
        cap = f", cap {self.cap}" if self.cap is not None else ""
        return f"{self.hits} × {self.label}: {self.value:.1f} after decay{cap}"


class RuleSum(NamedTuple):
    """One rule's share of ``HitSums``: the sum, how many hits it adds up, the last one's event."""

    total: float
    hits: int
    last: str

    def plus(self, value: float, event_id: str) -> RuleSum:
        return RuleSum(self.total + value, self.hits + 1, event_id)


class HitSums(NamedTuple):
    """The hits' per-rule sums, anchored at the first hit's time: for each rule, the sum in
    canonical order of ``points × e^(λ(ts − anchor))``. A rule's decayed value at ``now`` is
    its sum × ``e^(−λ(now − anchor))``.

    A hit that sorts after every other one is added to the sums as they are, which is exactly
    what rebuilding them would give (same additions in the same order). Anything else (a late
    event sorting earlier, pruning, a recycle, another half-life) rebuilds them."""

    rate: float  # λ = ln 2 / half-life, per second
    first: Hit  # the anchor is its time
    last: Hit
    size: int  # how many hits they cover
    by_rule: dict[str, RuleSum]


def covers(sums: HitSums, hits: tuple[Hit, ...], model: ScoringModel) -> bool:
    """Whether ``sums`` are the sums of ``hits`` under ``model``'s half-life (hits only ever
    gain newer hits or lose their oldest, so the ends and the length tell)."""
    return (
        sums.rate == model.decay_rate
        and len(hits) == sums.size
        and hits[0] == sums.first
        and hits[-1] == sums.last
    )


def _add(by_rule: dict[str, RuleSum], rule_id: str, value: float, event_id: str) -> None:
    found = by_rule.get(rule_id)
    by_rule[rule_id] = RuleSum(value, 1, event_id) if found is None else found.plus(value, event_id)


def hit_sums(
    hits: tuple[Hit, ...], model: ScoringModel, previous: HitSums | None = None
) -> HitSums | None:
    """The sums for ``hits``: extended from ``previous`` when ``hits`` are its hits followed by
    newer ones, else rebuilt. None when the hits span too long to anchor (then ``engagement``
    decays every hit on its own)."""
    if not hits:
        return None
    rate = model.decay_rate
    n = previous.size if previous is not None else 0
    extends = (
        previous is not None
        and previous.rate == rate
        and n <= len(hits)
        and hits[0] == previous.first
        and hits[n - 1] == previous.last
    )
    if previous is not None and extends:
        if n == len(hits):
            return previous
        by_rule, start = dict(previous.by_rule), n
    else:
        by_rule, start = {}, 0
    anchor = hits[0].ts
    if (hits[-1].ts - anchor) * rate > 600:  # e^600 nears the float range: do not anchor
        return None
    for ts, event_id, rule_id, points in hits[start:]:
        _add(by_rule, rule_id, points * exp(rate * (ts - anchor)), event_id)
    return HitSums(rate, hits[0], hits[-1], len(hits), by_rule)


class Engagement(NamedTuple):
    """An engagement score at one moment, with what explains it: each rule's sum and the decay
    factor since the sums' anchor. The explanation's lines are built when asked for: deciding
    needs only the score."""

    score: int
    totals: Mapping[str, RuleSum]
    factor: float
    model: ScoringModel

    def lines(self) -> tuple[EngagementLine, ...]:
        """Each engaged rule's share, capped and rounded, in the model's order."""
        out = []
        factor, totals = self.factor, self.totals
        for rule_id, cap, ceiling, label in self.model.engagement_lines:
            found = totals.get(rule_id)
            if found is not None:
                total = found.total * factor
                if total > ceiling:
                    total = ceiling
                elif total < -ceiling:
                    total = -ceiling
                if points := round(total):
                    out.append(
                        EngagementLine(rule_id, points, found.hits, total, cap, label, found.last)
                    )
        return tuple(out)


def score_engagement(
    hits: tuple[Hit, ...], model: ScoringModel, now_ts: float, sums: HitSums | None = None
) -> Engagement:
    """What they did, at ``now``: each hit halves in value every half-life; each rule's sum is
    capped; the total is at least 0.

    With every hit in the past, a rule's value is its anchored sum times one decay factor. A
    hit in the future (a late clock) is worth its points, undecayed, so then each hit is
    decayed on its own. ``now_ts`` is the moment in epoch seconds."""
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
        for ts, event_id, rule_id, points in hits:  # canonical order: reproducible sums
            age = now_ts - ts
            value = points * exp(-model.decay_rate * age) if age > 0 else float(points)
            _add(totals, rule_id, value, event_id)
    if not totals:
        return Engagement(0, {}, factor, model)
    score = 0
    for rule_id, _, ceiling, _ in model.engagement_lines:
        found = totals.get(rule_id)
        if found is not None:  # the cap written out, as in lines(): the decision's hottest loop
            total = found.total * factor
            if total > ceiling:
                total = ceiling
            elif total < -ceiling:
                total = -ceiling
            score += round(total)
    return Engagement(max(score, 0), totals, factor, model)


def engagement(
    hits: tuple[Hit, ...], model: ScoringModel, now: datetime, sums: HitSums | None = None
) -> tuple[int, tuple[EngagementLine, ...]]:
    """The engagement score at ``now`` and its explanation (``score_engagement``)."""
    scored = score_engagement(hits, model, now.timestamp(), sums)
    return scored.score, scored.lines()


def doing(event: FormSubmitted | EngagementRecorded) -> Doing:
    """What the event says the lead did, as engagement rules test it."""
    if isinstance(event, FormSubmitted):
        return FORM_FILL, (event.page_url or "").lower(), event.utm.get("utm_campaign"), {}
    return event.engagement_type, (event.url or "").lower(), event.campaign, event.properties


def hits_for(what: Doing, model: ScoringModel, event_id: str, ts: float) -> tuple[Hit, ...]:
    """The hits one event leaves: sorted, as they share a time and event and the model's
    tests come sorted by rule id."""
    kind, url, campaign, props = what
    found = []
    for rule_id, points, url_contains, rule_campaign, properties in model.engagement_tests.get(
        kind, ()
    ):
        if url_contains and url_contains not in url:
            continue
        if rule_campaign and rule_campaign != campaign:
            continue
        if properties and any(props.get(k) != v for k, v in properties):
            continue
        found.append(Hit(ts, event_id, rule_id, points))
    return tuple(found)


def add_hits(
    hits: tuple[Hit, ...],
    new: tuple[Hit, ...],
    since: datetime | None,
    now_ts: float,
    model: ScoringModel,
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
    horizon = now_ts - model.half_life_s * PRUNE_AFTER_HALF_LIVES
    if since is not None:
        horizon = max(horizon, since.timestamp())
    start = max(bisect_left(merged, (horizon, "")), len(merged) - model.max_hits)
    return merged[start:] if start > 0 else merged


def seen(hits: tuple[Hit, ...], event_id: str, ts: float) -> bool:
    """Whether an event already left hits (a redelivery): hits sort by time, then event, so
    the first hit at or after ``(ts, event_id)`` is one of its hits if it left any."""
    i = bisect_left(hits, (ts, event_id))
    return i < len(hits) and hits[i].ts == ts and hits[i].event_id == event_id
