"""The console's rules, pure: who may do what, what a search names, and the geometry of the
charts the pages draw. Plain data in, plain data out."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from leadrelay_shared import identity

MIN_PASSWORD = 12
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{1,63}")


class Role(StrEnum):
    """A viewer sees every page; an operator also changes things (pauses a rep, replays)."""

    VIEWER = "viewer"
    OPERATOR = "operator"


@dataclass(frozen=True)
class User:
    username: str
    role: Role

    @property
    def may_change(self) -> bool:
        return self.role is Role.OPERATOR


class AccountError(ValueError):
    """An account the console will not create, naming the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def check_account(username: str, password: str) -> None:
    if not USERNAME.fullmatch(username):
        raise AccountError(
            "username", "2 to 64 letters, digits or ._@+-, starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD:
        raise AccountError("password", f"at least {MIN_PASSWORD} characters")
    if password.lower() == username.lower():
        raise AccountError("password", "must not be the username")


class SearchError(ValueError):
    """A search that names no lead: neither a lead id nor an email address."""


def lead_id_from_search(text: str) -> str:
    """The lead a search names: a lead id as given, or the id intake derives from an email."""
    text = text.strip()
    if not text:
        raise SearchError("type an email address or a lead id")
    if "@" in text:
        try:
            return identity.lead_id_of(text)
        except identity.EmailNotValidError as exc:
            raise SearchError(f"not an email address: {exc}") from exc
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise SearchError("not a lead id (a UUID) nor an email address") from None


def duration(seconds: float | None) -> str:
    """``2d 3h``, ``4h 05m``, ``3m 07s``, ``12s``: the two largest units a person reads."""
    if seconds is None:
        return "–"
    s = int(round(abs(seconds)))
    sign = "-" if seconds < 0 and s else ""
    days, rest = divmod(s, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


def percent(share: float | None) -> str:
    return "–" if share is None else f"{share * 100:.1f}%"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    """Vertical bars on a ``width`` × ``height`` canvas with room for labels under them."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    baseline: float
    ticks: tuple[tuple[float, str], ...]


def bar_chart(
    values: Sequence[tuple[str, float, str]], *, width: int = 640, height: int = 240
) -> BarChart:
    """Bars for ``(label, value, text)``, scaled to the largest value on a rounded axis."""
    top, bottom, left = 12.0, 36.0, 48.0
    plot_h = height - top - bottom
    scale_max = nice_ceiling(max((v for _, v, _ in values), default=0.0))
    slot = (width - left) / max(len(values), 1)
    bar_w = slot * 0.7
    bars = []
    for i, (label, value, text) in enumerate(values):
        h = 0.0 if scale_max == 0 else plot_h * value / scale_max
        x = left + i * slot + (slot - bar_w) / 2
        bars.append(Bar(label, value, text, x, top + plot_h - h, bar_w, h))
    ticks = tuple(
        (top + plot_h - plot_h * f, _short(scale_max * f)) for f in (0.0, 0.25, 0.5, 0.75, 1.0)
    )
    return BarChart(width, height, tuple(bars), top + plot_h, ticks)


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (0 stays 0)."""
    if value <= 0:
        return 0.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(m * power) for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"
