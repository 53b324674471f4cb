"""Working time: deadlines that skip nights, weekends, public holidays and declared exceptions.

Pure functions of a calendar, a time zone and instants. Wall-clock hours are turned into instants
in the assignee's zone day by day, so a DST change moves the working day with the clock on the
wall, and durations are summed in UTC, so an hour of working time is always 3,600 seconds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

MAX_DAYS = 800  # a deadline further away than this is a configuration mistake
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Exception_:
    """One date that differs from the week: closed, or open with its own hours."""

    day: date
    hours: tuple[int, int] | None  # minutes after local midnight; None: closed all day
    note: str = ""


@dataclass(frozen=True)
class Calendar:
    id: str
    zone: ZoneInfo
    always: bool = False  # 24x7: working time is wall time
    days: frozenset[int] = frozenset(range(5))  # Monday is 0
    hours: tuple[int, int] = (9 * 60, 17 * 60)  # minutes after local midnight, end may be 1440
    country: str | None = None
    subdivision: str | None = None
    exceptions: Mapping[date, Exception_] = field(default_factory=dict)
    _years: dict[int, holidays.HolidayBase] = field(default_factory=dict, compare=False, repr=False)

    def holiday(self, day: date) -> str | None:
        """The public holiday's name on ``day`` in this calendar's country, if any."""
        if self.country is None:
            return None
        table = self._years.get(day.year)
        if table is None:
            table = holidays.country_holidays(self.country, subdiv=self.subdivision, years=day.year)
            self._years[day.year] = table
        return table.get(day)

    def hours_on(self, day: date) -> tuple[int, int] | None:
        """Working minutes of a local date, or None when it is not a working day."""
        if self.always:
            return (0, 1440)
        exception = self.exceptions.get(day)
        if exception is not None:
            return exception.hours
        if day.weekday() not in self.days or self.holiday(day):
            return None
        return self.hours

    def why_closed(self, day: date) -> str:
        exception = self.exceptions.get(day)
        if exception is not None:
            return exception.note or "closed by exception"
        name = self.holiday(day)
        if name:
            return f"public holiday: {name}"
        return "weekend" if day.weekday() >= 5 else "not a working day"


def _instant(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    wall = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def windows(cal: Calendar, zone: ZoneInfo, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working windows (UTC, start inclusive) from ``start`` on, clipped to begin at ``start``."""
    day = start.astimezone(zone).date() - timedelta(days=1)  # a window may cross midnight in UTC
    for _ in range(MAX_DAYS):
        hours = cal.hours_on(day)
        if hours is not None:
            a, b = _instant(day, hours[0], zone), _instant(day, hours[1], zone)
            a = max(a, start)
            if b > a:
                yield a, b
        day += timedelta(days=1)
    raise ValueError(f"calendar {cal.id!r} has no working time within {MAX_DAYS} days of {start}")


def add_working(cal: Calendar, zone: ZoneInfo, start: datetime, duration: timedelta) -> datetime:
    """The instant when ``duration`` of working time has passed since ``start``."""
    if cal.always:
        return start + duration
    remaining = duration
    for a, b in windows(cal, zone, start):
        if b - a >= remaining:
            return a + remaining
        remaining -= b - a
    raise AssertionError("unreachable")  # windows() raises first


def working_between(cal: Calendar, zone: ZoneInfo, start: datetime, end: datetime) -> timedelta:
    """Working time between two instants (zero when ``end`` is not after ``start``)."""
    if end <= start:
        return timedelta(0)
    if cal.always:
        return end - start
    total = timedelta(0)
    for a, b in windows(cal, zone, start):
        if a >= end:
            break
        total += min(b, end) - a
    return total


def closed_days(
    cal: Calendar, zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[date, str]]:
    """Whole local days between two instants that do not count, with why (for the alert)."""
    if cal.always:
        return []
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    out: list[tuple[date, str]] = []
    day = first + timedelta(days=1)
    while day < last and len(out) < 31:
        if cal.hours_on(day) is None:
            out.append((day, cal.why_closed(day)))
        day += timedelta(days=1)
    return out


def local_text(at: datetime, zone: ZoneInfo) -> str:
    """``Mon 2026-11-23 09:15 EST`` in the zone's wall time."""
    local = at.astimezone(zone)
    return f"{DAY_NAMES[local.weekday()].capitalize()} {local:%Y-%m-%d %H:%M} {local.tzname()}"


def explain_due(
    cal: Calendar, zone: ZoneInfo, start: datetime, due: datetime, duration: timedelta
) -> str:
    """Why the deadline falls where it does, in the assignee's wall time."""
    text = (
        f"handed off {local_text(start, zone)}, due {local_text(due, zone)} "
        f"({format_duration(duration)} of {'time' if cal.always else 'working time'} "
        f"on calendar {cal.id} in {zone.key})"
    )
    skipped = closed_days(cal, zone, start, due)
    if skipped:
        names = ", ".join(
            f"{DAY_NAMES[d.weekday()].capitalize()} {d:%m-%d} ({why})" for d, why in skipped
        )
        text += f"; not counted: {names}"
    return text


def format_duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{d.total_seconds():g}s"
