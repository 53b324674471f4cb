"""In-memory fakes of the units of work, for handler tests (the real ones are tested in
tests/integration against PostgreSQL)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any, Self

from leadrelay_shared.contracts import Event, Serialised, Stage
from leadrelay_shared.privacy import scrub
from router.domain import CurrentOwner
from scoring.domain import LeadProfile
from sla_monitor.domain import Alert, Clock, Touch


class FakeUnitOfWorkBase:
    def __init__(self) -> None:
        self.processed: set[uuid.UUID] = set()
        self.outbox: list[Event] = []
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.commits = 0
        self._pending: list[Any] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def scrub_outbox(self, lead_id: str) -> None:
        self.outbox = [type(e).model_validate(scrub(e.model_dump(mode="json")))
                       if e.lead_id == lead_id else e for e in self.outbox]

    async def scrub_webhooks(self, lead_id: str) -> None:
        for fields in self.webhooks.values():
            if fields["lead_id"] == lead_id:
                fields["payload"] = scrub(fields["payload"])

    async def commit(self) -> None:
        self.commits += 1

    async def claim(self, events: Sequence[Event]) -> list[Event]:
        fresh = []
        for event in events:
            if event.event_id not in self.processed:
                self.processed.add(event.event_id)
                fresh.append(event)
        return fresh

    async def emit(self, events: Sequence[Event | Serialised]) -> None:
        # an event written straight to JSON must parse as its contract
        self.outbox.extend(e.parse() if isinstance(e, Serialised) else e for e in events)

    async def enqueue_webhooks(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            self.webhooks.setdefault(row["id"], {k: v for k, v in row.items() if k != "id"})


class FakeLeads:
    def __init__(self) -> None:
        self.rows: dict[str, LeadProfile] = {}

    async def get_many_for_update(self, lead_ids: Collection[str]) -> dict[str, LeadProfile]:
        return {i: self.rows[i] for i in lead_ids if i in self.rows}

    async def save_many(self, profiles: Sequence[LeadProfile], *, model_version: str,
                        now: datetime) -> None:
        for profile in profiles:
            self.rows[profile.lead_id] = profile

    async def due_for_timers(self, due: dict[Stage, float], now: datetime,
                             limit: int) -> list[LeadProfile]:
        return [p for p in self.rows.values() if p.stage in due and p.stage_entered_at
                and (now - p.stage_entered_at).total_seconds() >= due[p.stage]][:limit]


class FakeTimeline:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    async def add_many(self, entries: Sequence[Any]) -> None:
        self.entries.extend(entries)

    async def scrub(self, lead_id: str) -> None:
        self.entries = [
            replace(e, detail=scrub(e.detail), detail_json=None) if e.lead_id == lead_id else e
            for e in self.entries]


class FakeHistory:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def add_many(self, records: Sequence[Any]) -> None:
        self.records.extend(records)


class FakeScoringUow(FakeUnitOfWorkBase):
    def __init__(self) -> None:
        super().__init__()
        self.leads = FakeLeads()
        self.timeline = FakeTimeline()
        self.history = FakeHistory()


class FakePointers:
    def __init__(self) -> None:
        self.positions: dict[str, int] = {}

    async def lock_many(self, pool_ids: Iterable[str]) -> dict[str, int]:
        return {p: self.positions.get(p, 0) for p in pool_ids}

    async def set_many(self, positions: dict[str, int], now: datetime) -> None:
        self.positions.update(positions)


class FakeLoads:
    def __init__(self) -> None:
        self.days: dict[str, dict[date, int]] = defaultdict(dict)

    async def recent(self, rep_ids: Iterable[str], now: datetime) -> dict[str, dict[date, int]]:
        return {r: dict(self.days[r]) for r in rep_ids if r in self.days}

    async def add_many(self, increments: dict[tuple[str, date], int]) -> None:
        for (rep, day), n in increments.items():
            self.days[rep][day] = self.days[rep].get(day, 0) + n


class FakeOwners:
    def __init__(self) -> None:
        self.current: dict[str, CurrentOwner] = {}

    async def get_many(self, lead_ids: Iterable[str]) -> dict[str, CurrentOwner]:
        return {i: self.current[i] for i in lead_ids if i in self.current}

    async def put_many(self, owners: Sequence[CurrentOwner], now: datetime) -> None:
        self.current.update({o.lead_id: o for o in owners})

    async def scrub(self, lead_id: str) -> None:
        if lead_id in self.current:
            self.current[lead_id] = replace(self.current[lead_id],
                                            lead=scrub(self.current[lead_id].lead))


class FakeAssignments:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(rows)


class FakeRouterUow(FakeUnitOfWorkBase):
    def __init__(self) -> None:
        super().__init__()
        self.pointers = FakePointers()
        self.loads = FakeLoads()
        self.owners = FakeOwners()
        self.assignments = FakeAssignments()


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
                    best is None or (c.started_at, c.phase) > (best.started_at, best.phase)):
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
