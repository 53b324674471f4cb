"""In-memory fakes of the unit of work every service shares, for handler tests; the real ones are
tested in tests/integration against PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Self

from leadrelay_shared.contracts import Event, Serialised
from leadrelay_shared.privacy import scrub


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
        self.outbox = [
            type(e).model_validate(scrub(e.model_dump(mode="json"))) if e.lead_id == lead_id else e
            for e in self.outbox
        ]

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
