"""analytics' use cases: record a batch of events in the read model; rebuild it from the
topics' history. Recording is idempotent (facts are keyed by event id) and commutative (a
lead's row keeps its first touch, latest assignment and latest stage), so a redelivered, late
or out-of-order event leaves the same figures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from leadrelay_shared.contracts import Event
from leadrelay_shared.uow import Transaction

from . import domain

HANDLED = domain.HANDLED


class UnitOfWork(Transaction, Protocol):
    async def add(self, facts: domain.Facts) -> None: ...
    async def reset(self) -> None: ...


async def record(events: Sequence[Event], *, uow: UnitOfWork) -> bool:
    """Add what ``events`` say to the read model, in one transaction. Sends nothing."""
    async with uow:
        await uow.add(domain.facts_of(events))
        await uow.commit()
    return False


async def rebuild(history: Callable[[], Awaitable[int]], *, uow: UnitOfWork) -> int:
    """Empty the read model, then replay ``history`` into it (it returns how many events it
    recorded). A consumer still running meanwhile only adds what the replay adds again."""
    async with uow:
        await uow.reset()
        await uow.commit()
    return await history()
