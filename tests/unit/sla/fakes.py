"""In-memory fakes of sla-monitor's repositories, for handler tests; the real ones are
tested in tests/integration against PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sla_monitor.domain import Alert, Clock, Touch
from tests.unit.fakes import FakeUnitOfWorkBase


class FakeClocks:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Clock] = {}

    async def add_many(self, clocks: Sequence[Clock]) -> None:
        for clock in clocks:
            self.rows.setdefault(clock.id, clock)

    async def open_for_leads(self, lead_ids: Collection[str]) -> dict[str, list[Clock]]:
        found: dict[str, list[Clock]] = {}
        for c in sorted(self.rows.values(), key=lambda c: c.id):
            if c.lead_id in lead_ids and c.status == "open":
                found.setdefault(c.lead_id, []).append(c)
        return found

    async def latest_for_leads(self, lead_ids: Collection[str]) -> dict[str, Clock]:
        found: dict[str, Clock] = {}
        for c in self.rows.values():
            best = found.get(c.lead_id)
            if c.lead_id in lead_ids and (
                best is None or (c.started_at, c.phase) > (best.started_at, best.phase)
            ):
                found[c.lead_id] = c
        return found

    async def save_many(self, clocks: Sequence[Clock]) -> None:
        for clock in clocks:
            self.rows[clock.id] = clock

    async def claim_due(self, now: datetime, limit: int) -> list[Clock]:
        due = [c for c in self.rows.values() if c.next_at is not None and c.next_at <= now]
        return sorted(due, key=lambda c: c.next_at or now)[:limit]

    def statuses(self) -> list[str]:
        return sorted(c.status for c in self.rows.values())


class FakeTouches:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Touch] = {}

    async def add_many(self, touches: Sequence[Touch]) -> None:
        for touch in touches:
            self.rows.setdefault(touch.event_id, touch)

    async def for_leads(self, lead_ids: Collection[str]) -> dict[str, list[Touch]]:
        found: dict[str, list[Touch]] = {}
        for t in sorted(self.rows.values(), key=lambda t: t.at):
            if t.lead_id in lead_ids:
                found.setdefault(t.lead_id, []).append(t)
        return found


class FakeAlerts:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Alert] = {}

    async def add_many(self, alerts: Sequence[Alert]) -> set[uuid.UUID]:
        fresh = {a.id for a in alerts if a.id not in self.rows}
        for a in alerts:
            self.rows.setdefault(a.id, a)
        return fresh

    def levels(self) -> list[str]:
        return [a.level for a in sorted(self.rows.values(), key=lambda a: a.fired_at)]


class FakeSlaUow(FakeUnitOfWorkBase):
    def __init__(self) -> None:
        super().__init__()
        self.clocks = FakeClocks()
        self.touches = FakeTouches()
        self.alerts = FakeAlerts()
