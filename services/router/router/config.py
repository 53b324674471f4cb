"""The routing configuration: reps, teams, territories, accounts and webhooks, from YAML.

``parse`` validates a document (errors name the line and the field) and ``compile_config`` turns
it into a ``RoutingConfig`` whose lookups are indexes and plain predicates, so the pure decision
in ``domain`` never reads YAML. The version is the author's label plus a digest of the canonical
document, so two different documents never share a version.
"""

from __future__ import annotations

import csv
import functools
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadrelay_shared import yamlconf
from leadrelay_shared.contracts import Stage
from leadrelay_shared.delivery import Endpoint
from leadrelay_shared.destinations import Destinations, refused_secrets, refused_urls
from leadrelay_shared.secretref import SigningSecret, reveal

from .errors import ConfigError
from .matching import AccountIndex, AccountRecord, normalise_domain

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROUTED_STAGES = (Stage.MQL, Stage.SQL)
Strategy = Literal["round_robin", "weighted_round_robin", "least_loaded"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HoursSpec(_Strict):
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = DAYS[:5]
    start: time = time(9)
    end: time = time(18)

    @model_validator(mode="after")
    def _ordered(self) -> HoursSpec:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AbsenceSpec(_Strict):
    from_: date = Field(alias="from")
    to: date

    @model_validator(mode="after")
    def _ordered(self) -> AbsenceSpec:
        if self.to < self.from_:
            raise ValueError("to must not be before from")
        return self


class CapacitySpec(_Strict):
    day: int | None = Field(default=None, ge=0)
    week: int | None = Field(default=None, ge=0)


class RepSpec(_Strict):
    id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1)
    email: str | None = None
    timezone: str | None = None
    working_hours: HoursSpec | None = None
    out_of_office: tuple[AbsenceSpec, ...] = ()
    paused: bool = False
    active: bool = True
    capacity: CapacitySpec = CapacitySpec()
    sdr: str | None = None
    manager: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return yamlconf.zone_name(value)


class MemberSpec(_Strict):
    rep: str
    weight: int = Field(default=1, ge=1, le=100)


class FallbackSpec(_Strict):
    rep: str | None = None
    queue: str | None = None

    @model_validator(mode="after")
    def _one(self) -> FallbackSpec:
        if (self.rep is None) == (self.queue is None):
            raise ValueError("give exactly one of rep or queue")
        return self


class TeamSpec(_Strict):
    id: str = Field(min_length=1, max_length=100)
    name: str
    stages: tuple[Stage, ...] = (Stage.MQL,)
    strategy: Strategy = "round_robin"
    members: tuple[MemberSpec | str, ...] = Field(min_length=1)
    respect_working_hours: bool = True
    fallback: FallbackSpec | None = None

    def member_specs(self) -> tuple[MemberSpec, ...]:
        return tuple(MemberSpec(rep=m) if isinstance(m, str) else m for m in self.members)


class SegmentSpec(_Strict):
    id: str
    min: int = Field(default=1, ge=0)
    max: int | None = None


class TerritorySpec(_Strict):
    id: str = Field(min_length=1)
    priority: int = 100
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    postal_codes: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    industries: tuple[str, ...] = ()
    teams: dict[Stage, str] = Field(min_length=1)

    @field_validator("postal_codes")
    @classmethod
    def _ranges(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            low, _, high = value.partition("-")
            if not low.strip() or (high and len(low.strip()) != len(high.strip())):
                raise ValueError(
                    f"{value!r}: use a code, a prefix ending in *, or LOW-HIGH of equal length"
                )
        return values


class AccountSpec(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    domains: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    owner: str | None = None


class MatchingSpec(_Strict):
    fuzzy_threshold: float = Field(default=90, ge=50, le=100)
    domain_aliases: dict[str, str] = Field(default_factory=dict)


class WebhookSpec(_Strict):
    id: str
    url: str
    secret: SigningSecret

    events: tuple[str, ...] = ("lead.assigned",)
    format: Literal["standard", "slack"] = "standard"


class RoutingSpec(_Strict):
    version: str = Field(min_length=1, max_length=60)
    timezone: str = "UTC"
    working_hours: HoursSpec = HoursSpec()
    matching: MatchingSpec = MatchingSpec()
    segments: tuple[SegmentSpec, ...] = ()
    reps: tuple[RepSpec, ...] = Field(min_length=1)
    teams: tuple[TeamSpec, ...] = Field(min_length=1)
    territories: tuple[TerritorySpec, ...] = ()
    default_teams: dict[Stage, str] = Field(default_factory=dict)
    fallback_queue: str = "unassigned"
    accounts: tuple[AccountSpec, ...] = ()
    accounts_csv: str | None = None
    webhooks: tuple[WebhookSpec, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return yamlconf.zone_name(value) or value

    @model_validator(mode="after")
    def _references(self) -> RoutingSpec:
        problems: list[str] = []
        for kind, ids in (
            ("reps", [r.id for r in self.reps]),
            ("teams", [t.id for t in self.teams]),
            ("territories", [t.id for t in self.territories]),
            ("accounts", [a.id for a in self.accounts]),
            ("segments", [s.id for s in self.segments]),
            ("webhooks", [w.id for w in self.webhooks]),
        ):
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            if dupes:
                problems.append(f"{kind}: duplicate id(s) {dupes}")
        reps = {r.id for r in self.reps}
        teams = {t.id for t in self.teams}
        segments = {s.id for s in self.segments}
        for r in self.reps:
            for ref in (r.sdr, r.manager):
                if ref is not None and ref not in reps:
                    problems.append(f"reps[{r.id}]: unknown rep {ref!r}")
        for t in self.teams:
            problems += [
                f"teams[{t.id}].members: unknown rep {m.rep!r}"
                for m in t.member_specs()
                if m.rep not in reps
            ]
            if t.fallback and t.fallback.rep and t.fallback.rep not in reps:
                problems.append(f"teams[{t.id}].fallback.rep: unknown rep {t.fallback.rep!r}")
        for terr in self.territories:
            problems += [
                f"territories[{terr.id}].teams: unknown team {v!r}"
                for v in terr.teams.values()
                if v not in teams
            ]
            problems += [
                f"territories[{terr.id}].segments: unknown segment {s!r}"
                for s in terr.segments
                if s not in segments
            ]
        problems += [
            f"default_teams.{k}: unknown team {v!r}"
            for k, v in self.default_teams.items()
            if v not in teams
        ]
        problems += [
            f"accounts[{a.id}].owner: unknown rep {a.owner!r}"
            for a in self.accounts
            if a.owner is not None and a.owner not in reps
        ]
        if problems:
            raise ValueError("; ".join(problems[:20]))
        return self


def in_segment(size: int | None, low: int, high: int | None) -> bool:
    return size is not None and size >= low and (high is None or size <= high)


@functools.lru_cache(maxsize=4096)
def _in_zone(now: datetime, zone: ZoneInfo) -> datetime:
    """``now`` in ``zone``; a batch decides every lead at one instant, so this repeats a lot."""
    return now.astimezone(zone)


@dataclass(frozen=True)
class Rep:
    id: str
    name: str
    email: str | None
    zone: ZoneInfo
    days: frozenset[int]
    start: time
    end: time
    absences: tuple[tuple[date, date], ...]
    paused: bool
    active: bool
    day_cap: int | None
    week_cap: int | None
    sdr: str | None
    manager: str | None

    def local(self, now: datetime) -> datetime:
        return _in_zone(now, self.zone)

    def absent_on(self, day: date) -> bool:
        if not self.absences:
            return False
        return any(a <= day <= b for a, b in self.absences)

    def working_at(self, now: datetime) -> bool:
        local = self.local(now)
        return local.weekday() in self.days and self.start <= local.time() < self.end


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    stages: frozenset[Stage]
    strategy: Strategy
    members: tuple[str, ...]
    sequence: tuple[str, ...]
    respect_hours: bool
    fallback_rep: str | None
    fallback_queue: str | None


@dataclass(frozen=True)
class Territory:
    id: str
    priority: int
    teams: Mapping[Stage, str]
    countries: frozenset[str]
    regions: frozenset[str]
    postal: tuple[tuple[str, str], ...]
    prefixes: tuple[str, ...]
    segments: tuple[tuple[str, int, int | None], ...]
    industries: frozenset[str]


@dataclass(frozen=True)
class RoutingConfig:
    version: str
    checksum: str
    spec: RoutingSpec
    reps: Mapping[str, Rep]
    teams: Mapping[str, Team]
    territories: tuple[Territory, ...]
    default_teams: Mapping[Stage, str]
    accounts: AccountIndex
    fallback_queue: str
    _endpoints: dict[str, Endpoint] = field(default_factory=dict)
    _by_country: dict[str, tuple[Territory, ...]] = field(default_factory=dict, compare=False)
    _anywhere: tuple[Territory, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        """Territories by country (those without countries are in every list), in priority
        order: a lead is compared only with the rules that could match its country."""
        countries = {c for t in self.territories for c in t.countries}
        anywhere = tuple(t for t in self.territories if not t.countries)
        object.__setattr__(self, "_anywhere", anywhere)
        object.__setattr__(
            self,
            "_by_country",
            {
                c: tuple(t for t in self.territories if not t.countries or c in t.countries)
                for c in countries
            },
        )

    def endpoints(self) -> dict[str, Endpoint]:
        return self._endpoints

    def territories_for(self, country: str | None) -> tuple[Territory, ...]:
        """The territories that may match a lead from ``country``, in priority order."""
        return self._by_country.get((country or "").upper(), self._anywhere)

    def segment_of(self, company_size: int | None) -> str | None:
        """The first configured size segment a company falls in (for SLA policies)."""
        return next(
            (s.id for s in self.spec.segments if in_segment(company_size, s.min, s.max)), None
        )

    def document(self) -> dict[str, Any]:
        return canonical(self.spec)

    def team_for(self, stage: Stage) -> Team | None:
        team_id = self.default_teams.get(stage)
        if team_id is not None:
            return self.teams[team_id]
        return next((t for t in self.teams.values() if stage in t.stages), None)


def smooth_weighted(members: Iterable[MemberSpec]) -> tuple[str, ...]:
    """One cycle of smooth weighted round robin: weight 3 and 1 give a, a, b, a (interleaved)."""
    members = list(members)
    total = sum(m.weight for m in members)
    current = [0] * len(members)
    out: list[str] = []
    for _ in range(total):
        for i, m in enumerate(members):
            current[i] += m.weight
        best = max(range(len(members)), key=lambda i: (current[i], -i))
        current[best] -= total
        out.append(members[best].rep)
    return tuple(out)


def _rep(spec: RepSpec, root: RoutingSpec) -> Rep:
    hours = spec.working_hours or root.working_hours
    return Rep(
        id=spec.id,
        name=spec.name,
        email=spec.email,
        zone=ZoneInfo(spec.timezone or root.timezone),
        days=frozenset(DAYS.index(d) for d in hours.days),
        start=hours.start,
        end=hours.end,
        absences=tuple((a.from_, a.to) for a in spec.out_of_office),
        paused=spec.paused,
        active=spec.active,
        day_cap=spec.capacity.day,
        week_cap=spec.capacity.week,
        sdr=spec.sdr,
        manager=spec.manager,
    )


def _team(spec: TeamSpec) -> Team:
    members = spec.member_specs()
    sequence = (
        smooth_weighted(members)
        if spec.strategy == "weighted_round_robin"
        else tuple(m.rep for m in members)
    )
    fb = spec.fallback
    return Team(
        id=spec.id,
        name=spec.name,
        stages=frozenset(spec.stages),
        strategy=spec.strategy,
        members=tuple(m.rep for m in members),
        sequence=sequence,
        respect_hours=spec.respect_working_hours,
        fallback_rep=fb.rep if fb else None,
        fallback_queue=fb.queue if fb else None,
    )


def _fold(value: str) -> str:
    return " ".join(value.casefold().split())


def _territory(spec: TerritorySpec, segments: Mapping[str, SegmentSpec]) -> Territory:
    ranges, prefixes = [], []
    for code in spec.postal_codes:
        low, _, high = (p.strip().upper() for p in code.partition("-"))
        if low.endswith("*"):
            prefixes.append(low[:-1])
        else:
            ranges.append((low, high or low))
    return Territory(
        id=spec.id,
        priority=spec.priority,
        teams=dict(spec.teams),
        countries=frozenset(c.upper() for c in spec.countries),
        regions=frozenset(_fold(r) for r in spec.regions),
        postal=tuple(ranges),
        prefixes=tuple(prefixes),
        segments=tuple((s, segments[s].min, segments[s].max) for s in spec.segments),
        industries=frozenset(_fold(i) for i in spec.industries),
    )


def canonical(spec: RoutingSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def compile_config(spec: RoutingSpec) -> RoutingConfig:
    checksum = yamlconf.checksum(spec)
    segments = {s.id: s for s in spec.segments}
    aliases = {
        normalise_domain(k): normalise_domain(v) for k, v in spec.matching.domain_aliases.items()
    }
    index = AccountIndex(
        [AccountRecord(a.id, a.name, a.domains, a.aliases, a.owner) for a in spec.accounts],
        threshold=spec.matching.fuzzy_threshold,
        domain_aliases=aliases,
    )
    endpoints = {
        w.id: Endpoint(
            id=w.id,
            url=w.url,
            secret=reveal(w.secret),
            event_types=frozenset(w.events),
            format=w.format,
        )
        for w in spec.webhooks
    }
    return RoutingConfig(
        version=f"{spec.version}+{checksum[:8]}",
        checksum=checksum,
        spec=spec,
        reps={r.id: _rep(r, spec) for r in spec.reps},
        teams={t.id: _team(t) for t in spec.teams},
        territories=tuple(
            sorted((_territory(t, segments) for t in spec.territories), key=lambda t: t.priority)
        ),
        default_teams=dict(spec.default_teams),
        accounts=index,
        fallback_queue=spec.fallback_queue,
        _endpoints=endpoints,
    )


ACCOUNT_COLUMNS = ("id", "name", "domains", "aliases", "owner")


def accounts_from_csv(text: str, source: str = "accounts.csv") -> list[AccountSpec]:
    """Accounts from CSV with a header row: id, name, domains, aliases, owner.

    ``domains`` and ``aliases`` hold several values separated by ``;``. Errors name the row.
    """
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("id", "name") if c not in (reader.fieldnames or [])]
    if missing:
        raise ConfigError(source, [f"header: missing column(s) {missing}"])
    out, problems = [], []
    for number, row in enumerate(reader, start=2):

        def many(key: str, row: dict[str, str] = row) -> list[str]:
            return [v.strip() for v in (row.get(key) or "").split(";") if v.strip()]

        try:
            out.append(
                AccountSpec(
                    id=(row.get("id") or "").strip(),
                    name=(row.get("name") or "").strip(),
                    domains=tuple(many("domains")),
                    aliases=tuple(many("aliases")),
                    owner=(row.get("owner") or "").strip() or None,
                )
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            problems.append(f"row {number}: {'.'.join(map(str, err['loc']))}: {err['msg']}")
    if problems:
        raise ConfigError(source, problems[:20])
    return out


def parse(text: str, source: str = "routing.yaml", base: Path | None = None) -> RoutingConfig:
    """Validate YAML text (and the CSV it names) and compile it; errors name line and field."""
    spec = yamlconf.validate(
        RoutingSpec,
        text,
        source,
        error=ConfigError,
        aliases={"from_": "from"},
        what="routing configuration",
    )
    if spec.accounts_csv:
        path = (base or Path.cwd()) / spec.accounts_csv
        try:
            rows = accounts_from_csv(path.read_text(encoding="utf-8-sig"), str(path))
        except OSError as exc:
            raise ConfigError(
                source, [f"accounts_csv: cannot read {path}: {exc.strerror}"]
            ) from exc
        spec = from_document(
            {
                **canonical(spec),
                "accounts_csv": None,
                "accounts": [
                    *canonical(spec).get("accounts", []),
                    *(a.model_dump(exclude_none=True) for a in rows),
                ],
            },
            source,
        )
    return compile_config(spec)


def check_destinations(
    config: RoutingConfig, destinations: Destinations, source: str
) -> RoutingConfig:
    """``config`` when every webhook URL may be called and its secret is given as it must be;
    else the error naming each."""
    webhooks = list(enumerate(config.spec.webhooks))
    urls = {f"webhooks[{i}].url": w.url for i, w in webhooks}
    secrets: dict[str, object] = {f"webhooks[{i}].secret": w.secret for i, w in webhooks}
    refused = refused_urls(urls, destinations) + refused_secrets(secrets, destinations)
    if refused:
        raise ConfigError(source, refused)
    return config


def from_document(doc: Mapping[str, Any], source: str = "document") -> RoutingSpec:
    """A spec from a JSON document (the admin API, the stored versions)."""
    try:
        return RoutingSpec.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(source, [yamlconf.describe(e, None) for e in exc.errors()]) from exc


def load(path: Path) -> RoutingConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    return parse(text, str(path), path.parent)
