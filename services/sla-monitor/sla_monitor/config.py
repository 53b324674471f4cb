"""SLA policies, working calendars and alert channels, from YAML.

``parse`` validates a document (errors name the line and the field) and compiles it into an
``SlaConfig``: calendars with their holidays and exceptions, policies in the order they are
tried, and channels as delivery endpoints. The version is the author's label plus a digest of
the canonical document, as for the routing configuration.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

import holidays
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadrelay_shared import yamlconf
from leadrelay_shared.contracts import Stage
from leadrelay_shared.delivery import Endpoint
from leadrelay_shared.destinations import Destinations, refused_secrets, refused_urls
from leadrelay_shared.secretref import KnownSecret, SigningSecret, reveal

from .calendar import DAY_NAMES, Calendar, Exception_
from .errors import PolicyError

Level = Literal["warning", "breach", "escalation", "reroute", "resolved"]
LEVELS: tuple[Level, ...] = ("warning", "breach", "escalation", "reroute", "resolved")
DEFAULT_PATH = Path(__file__).with_name("default_sla.yaml")  # shipped with the package
_DURATION = re.compile(r"^\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: str | int | float) -> timedelta:
    """``15m``, ``4h``, ``1h30m``, ``2d`` (a day is 24 hours), ``90s``, or plain seconds."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if not m or not any(m.groups()):
            raise ValueError(f"{value!r} is not a duration like 15m, 4h, 1h30m, 2d or 90s")
        d, h, mi, s = m.groups()
        seconds = int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


def _minutes(value: str) -> int:
    if value == "24:00":
        return 1440
    t = time.fromisoformat(value)
    return t.hour * 60 + t.minute


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HolidaySpec(_Strict):
    country: str = Field(min_length=2, max_length=3)
    subdivision: str | None = None

    @model_validator(mode="after")
    def _known(self) -> HolidaySpec:
        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision, years=2026)
        except NotImplementedError as exc:
            raise ValueError(str(exc)) from exc
        return self


class _Hours(_Strict):
    start: str = "09:00"
    end: str = "17:00"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            _minutes(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a time like 09:00") from exc
        return value

    @model_validator(mode="after")
    def _ordered(self) -> _Hours:
        if _minutes(self.end) <= _minutes(self.start):
            raise ValueError("end must be after start (use 24:00 for midnight)")
        return self


class ExceptionSpec(_Hours):
    date: date
    closed: bool = False
    note: str = ""


class CalendarSpec(_Hours):
    id: str = Field(min_length=1, max_length=100)
    timezone: str = "UTC"
    use_assignee_timezone: bool = True
    always: bool = False
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = DAY_NAMES[:5]
    holidays: HolidaySpec | None = None
    exceptions: tuple[ExceptionSpec, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return yamlconf.zone_name(value) or value


class WhenSpec(_Strict):
    """Which handoffs a policy covers; an empty field matches everything."""

    stages: tuple[Stage, ...] = ()
    teams: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    fit_grades: tuple[str, ...] = ()
    min_fit: int | None = None
    min_engagement: int | None = None
    max_engagement: int | None = None


class PolicySpec(_Strict):
    id: str = Field(min_length=1, max_length=100)
    description: str = ""
    when: WhenSpec = WhenSpec()
    calendar: str
    first_touch: str | int | float
    follow_ups: tuple[str | int | float, ...] = ()
    warning_at: float | None = Field(default=0.8, gt=0, lt=1)
    escalate_after: str | int | float | None = None
    reroute_after: str | int | float | None = None
    max_reroutes: int = Field(default=2, ge=0, le=100)
    channels: tuple[str, ...] | None = None

    @field_validator("first_touch", "escalate_after", "reroute_after")
    @classmethod
    def _duration(cls, value: str | int | float | None) -> str | int | float | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("follow_ups")
    @classmethod
    def _durations(cls, values: tuple[str | int | float, ...]) -> tuple[str | int | float, ...]:
        for value in values:
            parse_duration(value)
        return values

    @model_validator(mode="after")
    def _order(self) -> PolicySpec:
        if (
            self.escalate_after is not None
            and self.reroute_after is not None
            and parse_duration(self.reroute_after) <= parse_duration(self.escalate_after)
        ):
            raise ValueError("reroute_after must be later than escalate_after")
        return self


class ChannelSpec(_Strict):
    id: str = Field(min_length=1, max_length=100)
    type: Literal["webhook", "slack", "pagerduty"]
    url: str = Field(pattern=r"^https?://")
    secret: SigningSecret = "whsec_bGVhZHJlbGF5LXVuc2lnbmVk"
    routing_key: KnownSecret | None = None
    levels: tuple[Level, ...] = LEVELS
    enabled: bool = True

    @model_validator(mode="after")
    def _key(self) -> ChannelSpec:
        if self.type == "pagerduty" and not self.routing_key:
            raise ValueError("a pagerduty channel needs its routing_key (integration key)")
        return self


class SlaSpec(_Strict):
    version: str = Field(min_length=1, max_length=100)
    calendars: tuple[CalendarSpec, ...] = Field(min_length=1)
    policies: tuple[PolicySpec, ...] = Field(min_length=1)
    channels: tuple[ChannelSpec, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> SlaSpec:
        problems = []
        for what, ids in (
            ("calendars", [c.id for c in self.calendars]),
            ("policies", [p.id for p in self.policies]),
            ("channels", [c.id for c in self.channels]),
        ):
            problems += [
                f"{what}: id {i!r} is used {n} times" for i, n in Counter(ids).items() if n > 1
            ]
        calendars, channels = {c.id for c in self.calendars}, {c.id for c in self.channels}
        for p in self.policies:
            if p.calendar not in calendars:
                problems.append(f"policies[{p.id}].calendar: unknown calendar {p.calendar!r}")
            problems += [
                f"policies[{p.id}].channels: unknown channel {c!r}"
                for c in p.channels or ()
                if c not in channels
            ]
        if problems:
            raise ValueError("; ".join(problems))
        return self


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@dataclass(frozen=True)
class Policy:
    id: str
    calendar: Calendar
    use_assignee_zone: bool
    first_touch: timedelta
    follow_ups: tuple[timedelta, ...] = ()
    warning_at: float | None = None
    escalate_after: timedelta | None = None
    reroute_after: timedelta | None = None
    max_reroutes: int = 2  # re-routes in a row of a lead nobody works; then escalation ends it
    channels: tuple[str, ...] | None = None
    when: WhenSpec = field(default_factory=WhenSpec)

    def zone_for(self, assignee_zone: str | None) -> ZoneInfo:
        """The assignee's zone when the calendar follows it and it is known, else the
        calendar's own (an unknown zone name falls back rather than stopping the clock)."""
        if self.use_assignee_zone and assignee_zone in _known_zones():
            return ZoneInfo(assignee_zone)
        return self.calendar.zone

    def deadline(self, phase: int) -> timedelta:
        return self.first_touch if phase == 0 else self.follow_ups[phase - 1]


@dataclass(frozen=True)
class Channel:
    endpoint: Endpoint
    levels: frozenset[str]


@dataclass(frozen=True)
class SlaConfig:
    version: str
    checksum: str
    spec: SlaSpec
    policies: tuple[Policy, ...]
    channels: Mapping[str, Channel]

    def policy(self, policy_id: str) -> Policy | None:
        return next((p for p in self.policies if p.id == policy_id), None)

    def endpoints(self) -> dict[str, Endpoint]:
        return {c.endpoint.id: c.endpoint for c in self.channels.values()}

    def channels_for(self, policy_id: str, level: str) -> list[Endpoint]:
        """The enabled channels that take ``level`` alerts for a policy."""
        policy = self.policy(policy_id)
        wanted = policy.channels if policy is not None else None
        return [
            c.endpoint
            for c in self.channels.values()
            if c.endpoint.enabled
            and level in c.levels
            and (wanted is None or c.endpoint.id in wanted)
        ]


def _calendar(spec: CalendarSpec) -> Calendar:
    exceptions = {
        e.date: Exception_(
            e.date, None if e.closed else (_minutes(e.start), _minutes(e.end)), e.note
        )
        for e in spec.exceptions
    }
    return Calendar(
        id=spec.id,
        zone=ZoneInfo(spec.timezone),
        always=spec.always,
        days=frozenset(DAY_NAMES.index(d) for d in spec.days),
        hours=(_minutes(spec.start), _minutes(spec.end)),
        country=spec.holidays.country if spec.holidays else None,
        subdivision=spec.holidays.subdivision if spec.holidays else None,
        exceptions=exceptions,
    )


def _optional(value: str | int | float | None) -> timedelta | None:
    return None if value is None else parse_duration(value)


def compile_config(spec: SlaSpec) -> SlaConfig:
    calendars = {c.id: _calendar(c) for c in spec.calendars}
    zones = {c.id: c.use_assignee_timezone for c in spec.calendars}
    policies = tuple(
        Policy(
            id=p.id,
            calendar=calendars[p.calendar],
            use_assignee_zone=zones[p.calendar],
            first_touch=parse_duration(p.first_touch),
            follow_ups=tuple(parse_duration(f) for f in p.follow_ups),
            warning_at=p.warning_at,
            escalate_after=_optional(p.escalate_after),
            reroute_after=_optional(p.reroute_after),
            max_reroutes=p.max_reroutes,
            channels=p.channels,
            when=p.when,
        )
        for p in spec.policies
    )
    formats = {"webhook": "standard", "slack": "slack", "pagerduty": "pagerduty"}
    channels = {
        c.id: Channel(
            Endpoint(
                id=c.id,
                url=c.url,
                secret=reveal(c.secret),
                enabled=c.enabled,
                format=formats[c.type],
                routing_key=reveal(c.routing_key) if c.routing_key else "",
            ),
            frozenset(c.levels),
        )
        for c in spec.channels
    }
    digest = yamlconf.checksum(spec)
    return SlaConfig(
        version=f"{spec.version}+{digest[:8]}",
        checksum=digest,
        spec=spec,
        policies=policies,
        channels=channels,
    )


def check_destinations(config: SlaConfig, destinations: Destinations, source: str) -> SlaConfig:
    """``config`` when every channel's URL may be called and its secrets are given as they
    must be; else the error naming each."""
    channels = list(enumerate(config.spec.channels))
    urls = {f"channels[{i}].url": c.url for i, c in channels}
    secrets: dict[str, object] = {
        f"channels[{i}].{name}": getattr(c, name)
        for i, c in channels
        for name in ("secret", "routing_key")
        if name in c.model_fields_set and getattr(c, name) is not None
    }
    refused = refused_urls(urls, destinations) + refused_secrets(secrets, destinations)
    if refused:
        raise PolicyError(source, refused)
    return config


def parse(text: str, source: str = "sla.yaml") -> SlaConfig:
    """Validate YAML text and compile it; errors name the line and the field."""
    spec = yamlconf.validate(SlaSpec, text, source, error=PolicyError, what="SLA policy file")
    return compile_config(spec)


def load(path: Path) -> SlaConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    return parse(text, str(path))
