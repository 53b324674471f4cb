"""The scoring model: a versioned YAML file that marketing and sales agree on.

``parse`` turns YAML text into a validated ``ModelSpec`` (errors name the line and the field);
``compile_model`` turns a spec into a ``ScoringModel`` whose rules are plain predicates, so the
pure scoring functions in ``domain`` evaluate fast and never look at YAML.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from math import inf, log
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadrelay_shared import yamlconf
from leadrelay_shared.contracts import EngagementType, LeadSnapshot, RejectReason, Stage

from .errors import ModelError

Grade = Literal["A", "B", "C", "D", "F"]
GRADES: tuple[Grade, ...] = ("A", "B", "C", "D", "F")
FORM_FILL = "form_fill"
LN2 = log(2)
EngagementOn = Literal[
    "form_fill",
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "ad_click",
    "product_signup",
    "demo_requested",
]
FitField = Literal[
    "email_domain",
    "is_free_email",
    "company",
    "title",
    "country",
    "region",
    "company_size",
    "industry",
]
OPERATORS = ("equals", "in_", "any_word", "contains", "gte", "lte", "between", "present")


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class FitRuleSpec(Spec):
    """One fit rule: a field of the lead, one test, and the points it gives (may be negative)."""

    id: str = Field(min_length=1, pattern=r"^[a-z0-9_.\-]+$")
    field: FitField
    points: int = Field(ge=-1000, le=1000)
    label: str | None = None
    equals: str | int | bool | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in", min_length=1)
    any_word: tuple[str, ...] | None = Field(default=None, min_length=1)
    contains: str | None = None
    gte: int | None = None
    lte: int | None = None
    between: tuple[int, int] | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> FitRuleSpec:
        given = [op for op in OPERATORS if getattr(self, op) is not None]
        if len(given) != 1:
            names = ", ".join(op.rstrip("_") for op in OPERATORS)
            raise ValueError(f"give exactly one test of {names} (found {len(given)})")
        if self.between and self.between[0] > self.between[1]:
            raise ValueError("between: the lower bound is above the upper bound")
        return self


class EngagementRuleSpec(Spec):
    """Points for something the lead did, capped per rule, decaying with the model's half-life."""

    id: str = Field(min_length=1, pattern=r"^[a-z0-9_.\-]+$")
    event: EngagementOn
    points: int = Field(ge=-1000, le=1000)
    cap: int | None = Field(default=None, gt=0)
    url_contains: str | None = None
    campaign: str | None = None
    properties: dict[str, str | int | float | bool] = Field(default_factory=dict)
    label: str | None = None


class FastLaneSpec(Spec):
    """An event that makes a fit lead an MQL at once (a demo request from a grade B lead)."""

    id: str = Field(min_length=1)
    event: EngagementOn
    min_grade: Grade = "B"
    url_contains: str | None = None


class MqlSpec(Spec):
    min_grade: Grade = "B"
    min_engagement: int = Field(default=50, ge=0)


class FeedbackSpec(Spec):
    """How sales' reject reasons end a pass: these disqualify, every other reason recycles."""

    disqualify_reasons: tuple[RejectReason, ...] = (
        "not_a_fit",
        "spam",
        "student",
        "competitor",
        "duplicate",
        "existing_customer",
        "bad_contact_data",
    )


class TimersSpec(Spec):
    """Moves made by time alone, in days; ``null`` switches one off."""

    mql_unaccepted_recycle_days: float | None = Field(default=14, gt=0)
    inquiry_nurture_days: float | None = Field(default=30, gt=0)
    lost_recycle_days: float | None = Field(default=90, gt=0)


class ModelSpec(Spec):
    version: str = Field(min_length=1, max_length=64)
    description: str | None = None
    grades: dict[Grade, int]
    fit: tuple[FitRuleSpec, ...]
    engagement_half_life_days: float = Field(default=30, gt=0)
    engagement: tuple[EngagementRuleSpec, ...]
    mql: MqlSpec = MqlSpec()
    fast_lanes: tuple[FastLaneSpec, ...] = ()
    feedback: FeedbackSpec = FeedbackSpec()
    timers: TimersSpec = TimersSpec()
    max_hits: int = Field(default=500, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        missing = [g for g in GRADES[:-1] if g not in self.grades]
        if missing:
            raise ValueError(f"grades: give a minimum for {', '.join(missing)} (F is the rest)")
        floors = [self.grades[g] for g in GRADES[:-1]]
        if floors != sorted(floors, reverse=True):
            raise ValueError("grades: minimums must fall from A to D")
        for kind, rules in (("fit", self.fit), ("engagement", self.engagement)):
            ids = [r.id for r in rules]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{kind}: rule ids must be unique ({', '.join(dupes)})")
        return self


# -- compiled form ---------------------------------------------------------------------------

Facts = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FitRule:
    id: str
    points: int
    message: str
    test: Callable[[Facts], bool]
    field: str  # the one field of the lead it tests


@dataclass(frozen=True, slots=True)
class EngagementRule:
    id: str
    event: str
    points: int
    cap: int | None
    message: str
    url_contains: str | None
    campaign: str | None
    properties: tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True)
class FastLane:
    id: str
    event: str
    min_grade: str
    url_contains: str | None


@dataclass(frozen=True)
class ScoringModel:
    """A compiled model: what the pure functions in ``domain`` need, and nothing else."""

    version: str
    checksum: str
    grades: tuple[tuple[str, int], ...]
    fit_rules: tuple[FitRule, ...]
    engagement_rules: tuple[EngagementRule, ...]
    rules_by_type: Mapping[str, tuple[EngagementRule, ...]]
    half_life: timedelta
    mql_min_grade: str
    mql_min_engagement: int
    fast_lanes: tuple[FastLane, ...]
    disqualify_reasons: frozenset[str]
    mql_unaccepted_recycle: timedelta | None
    inquiry_nurture: timedelta | None
    lost_recycle: timedelta | None
    max_hits: int
    spec: ModelSpec = field(repr=False, compare=False)
    decay_rate: float = field(init=False, repr=False, compare=False)
    """λ = ln 2 / half-life, per second (derived)."""
    engagement_lines: tuple[tuple[str, int | None, float, str], ...] = field(
        init=False, repr=False, compare=False
    )
    """(id, cap, the cap as a float (infinite without one), message) of each engagement rule,
    in the model's order (derived)."""

    fit_lines: tuple[tuple[str, int, str], ...] = field(init=False, repr=False, compare=False)
    """(id, points, message) of each fit rule, in the model's order (derived)."""
    fit_fields: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The fields the fit rules test, in the order of their first rule (derived)."""
    _fit_rules_of: dict[str, tuple[tuple[int, FitRule], ...]] = field(
        init=False, repr=False, compare=False
    )
    """Each tested field's rules with their places in ``fit_rules`` (derived)."""
    engagement_tests: Mapping[
        str, tuple[tuple[str, int, str | None, str | None, tuple[tuple[str, Any], ...]], ...]
    ] = field(init=False, repr=False, compare=False)
    """Per event type, (id, points, url_contains, campaign, properties) of its rules, sorted by
    id (derived from ``rules_by_type``, as plain tuples)."""
    fit_memo: dict[tuple[str, object], tuple[int, ...]] = field(
        init=False, repr=False, compare=False
    )
    """(field, value) → what ``fit_held`` found for it (derived, filled as values are seen)."""
    half_life_s: float = field(init=False, repr=False, compare=False)
    """The half-life in seconds (derived)."""
    timers: Mapping[Stage, tuple[timedelta, Stage, str]] = field(
        init=False, repr=False, compare=False
    )
    """Per stage that time moves: after how long, to which stage, and why (derived)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "decay_rate", LN2 / self.half_life.total_seconds())
        by_field: dict[str, list[tuple[int, FitRule]]] = {}
        for i, rule in enumerate(self.fit_rules):
            by_field.setdefault(rule.field, []).append((i, rule))
        object.__setattr__(self, "fit_fields", tuple(by_field))
        object.__setattr__(
            self, "fit_lines", tuple((r.id, r.points, r.message) for r in self.fit_rules)
        )
        object.__setattr__(
            self, "_fit_rules_of", {name: tuple(rules) for name, rules in by_field.items()}
        )
        object.__setattr__(
            self,
            "engagement_tests",
            {  # by id: one event's hits come sorted
                kind: tuple(
                    sorted(
                        (r.id, r.points, r.url_contains, r.campaign, r.properties) for r in rules
                    )
                )
                for kind, rules in self.rules_by_type.items()
            },
        )
        object.__setattr__(self, "fit_memo", {})
        object.__setattr__(self, "half_life_s", self.half_life.total_seconds())
        timed = (
            (Stage.MQL, self.mql_unaccepted_recycle, Stage.RECYCLED, "not accepted by sales"),
            (Stage.INQUIRY, self.inquiry_nurture, Stage.NURTURE, "did not qualify"),
            (Stage.LOST, self.lost_recycle, Stage.RECYCLED, "lost"),
        )
        object.__setattr__(
            self,
            "timers",
            {stage: (after, to, why) for stage, after, to, why in timed if after is not None},
        )
        object.__setattr__(
            self,
            "engagement_lines",
            tuple(
                (r.id, r.cap, float(r.cap) if r.cap is not None else inf, r.message)
                for r in self.engagement_rules
            ),
        )

    def fit_held(self, name: str, raw: object) -> tuple[int, ...]:
        """Places in ``fit_rules`` of the rules of field ``name`` that hold for the value
        ``raw``: tested once per model and value, then remembered (``fit_memo``). Values repeat
        across leads (countries, industries, titles, sizes); the memo is emptied past
        ``FIT_MEMO_MAX`` values, so it stays bounded. ``domain.fit_matches`` asks per field."""
        key = (name, raw)
        memo = self.fit_memo
        found = memo.get(key)
        if found is None:
            if len(memo) >= FIT_MEMO_MAX:
                memo.clear()
            fact = field_facts(name, raw)
            found = memo[key] = tuple(i for i, rule in self._fit_rules_of[name] if rule.test(fact))
        return found


_NOT_WORD = re.compile(r"[^a-z0-9]+")


def _words(text: str) -> frozenset[str]:
    words = frozenset(_NOT_WORD.split(text.lower()))
    return words - {""} if "" in words else words


def _fit_test(rule: FitRuleSpec) -> tuple[Callable[[Facts], bool], str]:
    name = rule.field
    if rule.present is not None:
        want = rule.present
        return (
            lambda f: (f.get(name) not in (None, "")) is want
        ), f"{name} {'given' if want else 'missing'}"
    if rule.equals is not None:
        eq: Any = rule.equals.lower() if isinstance(rule.equals, str) else rule.equals
        return (lambda f: f.get(name) == eq), f"{name} is {rule.equals}"
    if rule.in_ is not None:
        allowed = frozenset(v.lower() for v in rule.in_)
        return (lambda f: f.get(name) in allowed), f"{name} in {', '.join(rule.in_)}"
    if rule.any_word is not None:
        single = frozenset(w.lower() for w in rule.any_word if " " not in w)
        phrases = tuple(w.lower() for w in rule.any_word if " " in w)
        key = f"{name}__words"
        return (
            lambda f: (
                bool(single & f.get(key, frozenset()))
                or any(p in (f.get(name) or "") for p in phrases)
            )
        ), f"{name} mentions {', '.join(rule.any_word)}"
    if rule.contains is not None:
        part = rule.contains.lower()
        return (lambda f: part in (f.get(name) or "")), f"{name} contains {rule.contains}"
    return _range_test(rule)


def _range_test(rule: FitRuleSpec) -> tuple[Callable[[Facts], bool], str]:
    name = rule.field
    low, high = rule.between or (rule.gte, rule.lte)
    lo = low if low is not None else -(2**63)
    hi = high if high is not None else 2**63

    def test(f: Facts) -> bool:
        v = f.get(name)
        return isinstance(v, int) and lo <= v <= hi

    text = (
        f"{name} between {low} and {high}"
        if rule.between
        else f"{name} ≥ {low}"
        if low is not None
        else f"{name} ≤ {high}"
    )
    return test, text


TEXT_FIELDS = ("email_domain", "company", "title", "country", "region", "industry")
WORDED_FIELDS = ("title", "industry", "company")
FIT_MEMO_MAX = 100_000


def field_facts(name: str, raw: object) -> dict[str, Any]:
    """One field of the lead as the fit rules see it: strings stripped and lower-cased, titles,
    industries and company names also split in words (under ``<name>__words``)."""
    if name not in TEXT_FIELDS:
        return {name: raw}
    value = raw.strip().lower() if isinstance(raw, str) else None
    out: dict[str, Any] = {name: value}
    if name in WORDED_FIELDS:
        out[f"{name}__words"] = _words(value) if value else frozenset()
    return out


def facts(snapshot: LeadSnapshot) -> dict[str, Any]:
    """Every fit field of the lead as the fit rules see it (``field_facts`` of each)."""
    out: dict[str, Any] = {}
    for name in (*TEXT_FIELDS, "company_size", "is_free_email"):
        out.update(field_facts(name, getattr(snapshot, name)))
    return out


def compile_model(spec: ModelSpec, checksum: str = "") -> ScoringModel:
    fit_rules = []
    for r in spec.fit:
        test, text = _fit_test(r)
        fit_rules.append(FitRule(r.id, r.points, r.label or text, test, r.field))
    eng = tuple(
        EngagementRule(
            r.id,
            r.event,
            r.points,
            r.cap,
            r.label
            or f"{r.event.replace('_', ' ')}"
            + (f" of a page containing {r.url_contains}" if r.url_contains else ""),
            r.url_contains.lower() if r.url_contains else None,
            r.campaign,
            tuple(sorted(r.properties.items())),
        )
        for r in spec.engagement
    )
    by_type: dict[str, tuple[EngagementRule, ...]] = {}
    for rule in eng:
        by_type[rule.event] = by_type.get(rule.event, ()) + (rule,)

    def days(value: float | None) -> timedelta | None:
        return timedelta(days=value) if value is not None else None

    return ScoringModel(
        version=spec.version,
        checksum=checksum,
        grades=tuple((g, spec.grades[g]) for g in GRADES[:-1]),
        fit_rules=tuple(fit_rules),
        engagement_rules=eng,
        rules_by_type=by_type,
        half_life=timedelta(days=spec.engagement_half_life_days),
        mql_min_grade=spec.mql.min_grade,
        mql_min_engagement=spec.mql.min_engagement,
        fast_lanes=tuple(
            FastLane(f.id, f.event, f.min_grade, f.url_contains.lower() if f.url_contains else None)
            for f in spec.fast_lanes
        ),
        disqualify_reasons=frozenset(spec.feedback.disqualify_reasons),
        mql_unaccepted_recycle=days(spec.timers.mql_unaccepted_recycle_days),
        inquiry_nurture=days(spec.timers.inquiry_nurture_days),
        lost_recycle=days(spec.timers.lost_recycle_days),
        max_hits=spec.max_hits,
        spec=spec,
    )


# -- parsing with line numbers ---------------------------------------------------------------


def parse(text: str, source: str = "model.yaml") -> ScoringModel:
    """Validate YAML text and compile it; ``ModelError`` names each problem's line and field."""
    spec = yamlconf.validate(
        ModelSpec, text, source, error=ModelError, aliases={"in_": "in"}, what="model"
    )
    return compile_model(spec, hashlib.sha256(text.encode()).hexdigest())


def default_text() -> str:
    return resources.files("scoring").joinpath("default_model.yaml").read_text()


def default_model() -> ScoringModel:
    """The model shipped with leadrelay; teams copy it and make it their own."""
    return parse(default_text(), "default_model.yaml")


def engagement_types() -> tuple[str, ...]:
    return (FORM_FILL, *get_args(EngagementType))
