"""Repositories over one connection; they never commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from leadrelay_shared import jsonio
from leadrelay_shared.db import any_of, copy_rows
from leadrelay_shared.privacy import scrub
from leadrelay_shared.uow import SqlUnitOfWork

from ..domain import CurrentOwner
from . import orm


def _upsert(
    table: sa.Table, keys: Sequence[str], set_: Callable[[Any], Mapping[str, Any]]
) -> sa.Executable:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET …``, built once rather than per batch:
    building ``excluded`` and its column proxies is costly and never changes."""
    stmt = insert(table)
    return stmt.on_conflict_do_update(
        index_elements=[table.c[k] for k in keys], set_=set_(stmt.excluded)
    )


_ADD_LOADS = _upsert(
    orm.rep_loads,
    ("rep_id", "day"),
    lambda new: {"assigned": orm.rep_loads.c.assigned + new.assigned},
)
_PUT_OWNERS = _upsert(
    orm.lead_owners,
    ("lead_id",),
    lambda new: {
        c: new[c]
        for c in ("assignment_id", "owner_id", "queue", "team_id", "stage", "lead", "assigned_at")
    },
)


class RoundRobinState:
    """The pointer of each pool, locked for the transaction so instances never race."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock_many(self, pool_ids: Iterable[str]) -> dict[str, int]:
        """Lock the pointers of several pools, in id order so two instances never deadlock.
        One statement once the pools have pointers; a pool seen for the first time gets its
        row (inserted in id order) and is locked by a second one."""
        ids = sorted(set(pool_ids))
        if not ids:
            return {}
        found = await self._select_for_update(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            await self._conn.execute(
                insert(orm.rr_state).on_conflict_do_nothing(), [{"pool_id": i} for i in missing]
            )
            found.update(await self._select_for_update(missing))
        return found

    async def _select_for_update(self, ids: list[str]) -> dict[str, int]:
        t = orm.rr_state
        rows = await self._conn.execute(
            sa.select(t.c.pool_id, t.c.position)
            .where(any_of(t.c.pool_id, ids))
            .order_by(t.c.pool_id)
            .with_for_update()
        )
        return {r.pool_id: r.position for r in rows}

    async def set_many(self, positions: Mapping[str, int], now: datetime) -> None:
        if not positions:
            return
        t = orm.rr_state
        await self._conn.execute(
            sa.update(t)
            .where(t.c.pool_id == sa.bindparam("pid"))
            .values(position=sa.bindparam("pos"), updated_at=now),
            [{"pid": k, "pos": v} for k, v in sorted(positions.items())],
        )


class RepLoads:
    """Assignments per rep per local day: what capacity and least-loaded read."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def recent(self, rep_ids: Iterable[str], now: datetime) -> dict[str, dict[date, int]]:
        ids = sorted(set(rep_ids))
        out: dict[str, dict[date, int]] = defaultdict(dict)
        if not ids:
            return out
        t = orm.rep_loads
        since = (now - timedelta(days=8)).date()
        rows = await self._conn.execute(
            sa.select(t).where(any_of(t.c.rep_id, ids), t.c.day >= since)
        )
        for r in rows:
            out[r.rep_id][r.day] = r.assigned
        return out

    async def add_many(self, increments: Mapping[tuple[str, date], int]) -> None:
        if not increments:
            return
        await self._conn.execute(
            _ADD_LOADS,
            [{"rep_id": r, "day": d, "assigned": n} for (r, d), n in sorted(increments.items())],
        )


class LeadOwners:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get_many(self, lead_ids: Iterable[str]) -> dict[str, CurrentOwner]:
        ids = sorted(set(lead_ids))
        if not ids:
            return {}
        t = orm.lead_owners
        rows = await self._conn.execute(sa.select(t).where(any_of(t.c.lead_id, ids)))
        return {
            r.lead_id: CurrentOwner(
                r.lead_id, r.assignment_id, r.owner_id, r.queue, r.team_id, r.stage, r.lead
            )
            for r in rows
        }

    async def put_many(self, owners: Sequence[CurrentOwner], now: datetime) -> None:
        if not owners:
            return
        await self._conn.execute(
            _PUT_OWNERS,
            [
                {
                    "lead_id": o.lead_id,
                    "assignment_id": o.assignment_id,
                    "owner_id": o.owner_id,
                    "queue": o.queue,
                    "team_id": o.team_id,
                    "stage": o.stage,
                    "lead": o.lead,
                    "assigned_at": now,
                }
                for o in owners
            ],
        )

    async def scrub(self, lead_id: str) -> None:
        """Erasure: the lead snapshots kept with its ownership and its assignments."""
        for t, key in (
            (orm.lead_owners, orm.lead_owners.c.lead_id),
            (orm.assignments, orm.assignments.c.id),
        ):
            rows = (
                await self._conn.execute(
                    sa.select(key, t.c.lead).where(t.c.lead_id == lead_id, t.c.lead.is_not(None))
                )
            ).all()
            for row_key, lead in rows:
                await self._conn.execute(
                    sa.update(t).where(key == row_key).values(lead=scrub(lead))
                )


class Assignments:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    COLUMNS = (
        "id",
        "lead_id",
        "stage",
        "owner_id",
        "queue",
        "team_id",
        "strategy",
        "decision",
        "config_version",
        "cause_event_id",
        "created_at",
        "kind",
        "previous_owner_id",
        "lead",
    )
    JSON_COLUMNS = frozenset({"decision", "lead"})

    async def add_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append assignment records (COPY: a batch's are the largest rows router writes)."""
        if rows:
            await copy_rows(
                self._conn,
                orm.assignments,
                self.COLUMNS,
                [
                    tuple(
                        _json_or_none(r.get(c)) if c in self.JSON_COLUMNS else r.get(c)
                        for c in self.COLUMNS
                    )
                    for r in rows
                ],
            )


def _json_or_none(value: Any) -> str | None:
    return None if value is None else jsonio.dumps_str(value)


class RouterUnitOfWork(SqlUnitOfWork):
    pointers: RoundRobinState
    loads: RepLoads
    owners: LeadOwners
    assignments: Assignments

    def __init__(self, engine: AsyncEngine, *, lease_webhooks_s: float | None = None) -> None:
        super().__init__(engine, orm.common, lease_webhooks_s=lease_webhooks_s)

    def _open(self, conn: AsyncConnection) -> None:
        self.pointers = RoundRobinState(conn)
        self.loads = RepLoads(conn)
        self.owners = LeadOwners(conn)
        self.assignments = Assignments(conn)
