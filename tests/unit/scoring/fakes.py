"""In-memory fakes of scoring's repositories, for handler tests; the real ones are
tested in tests/integration against PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from leadrelay_shared.contracts import Stage
from leadrelay_shared.privacy import scrub
from scoring.domain import LeadProfile
from tests.unit.fakes import FakeUnitOfWorkBase


class FakeLeads:
    def __init__(self) -> None:
        self.rows: dict[str, LeadProfile] = {}

    async def get_many_for_update(self, lead_ids: Collection[str]) -> dict[str, LeadProfile]:
        return {i: self.rows[i] for i in lead_ids if i in self.rows}

    async def save_many(
        self, profiles: Sequence[LeadProfile], *, model_version: str, now: datetime
    ) -> None:
        for profile in profiles:
            self.rows[profile.lead_id] = profile

    async def due_for_timers(
        self, due: dict[Stage, float], now: datetime, limit: int
    ) -> list[LeadProfile]:
        return [
            p
            for p in self.rows.values()
            if p.stage in due
            and p.stage_entered_at
            and (now - p.stage_entered_at).total_seconds() >= due[p.stage]
        ][:limit]


class FakeTimeline:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    async def add_many(self, entries: Sequence[Any]) -> None:
        self.entries.extend(entries)

    async def scrub(self, lead_id: str) -> None:
        self.entries = [
            replace(e, detail=scrub(e.detail), detail_json=None) if e.lead_id == lead_id else e
            for e in self.entries
        ]


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
