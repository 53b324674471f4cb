"""In-memory fakes of router's repositories, for handler tests; the real ones are
tested in tests/integration against PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from leadrelay_shared.privacy import scrub
from router.domain import CurrentOwner
from tests.unit.fakes import FakeUnitOfWorkBase


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
            self.current[lead_id] = replace(
                self.current[lead_id], lead=scrub(self.current[lead_id].lead)
            )


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
