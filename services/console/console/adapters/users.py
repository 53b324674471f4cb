"""The console's accounts in PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from . import orm


class Users:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, username: str) -> dict[str, Any] | None:
        t = orm.users
        async with self._engine.connect() as conn:
            row = (
                (await conn.execute(sa.select(t).where(t.c.username == username)))
                .mappings()
                .first()
            )
        return dict(row) if row else None

    async def put(self, username: str, password_hash: str, role: str, now: datetime) -> bool:
        """Create the account or replace its password and role; True when it was new."""
        t = orm.users
        values = insert(t).values(
            username=username,
            password_hash=password_hash,
            role=role,
            created_at=now,
            updated_at=now,
        )
        upsert = values.on_conflict_do_update(
            index_elements=[t.c.username],
            set_={"password_hash": password_hash, "role": role, "updated_at": now},
        )
        async with self._engine.begin() as conn:
            return bool(await conn.scalar(upsert.returning(sa.literal_column("xmax = 0"))))

    async def signed_in(self, username: str, now: datetime, new_hash: str | None) -> None:
        """Note the sign-in, and store the password's hash again when its parameters aged."""
        t = orm.users
        values: dict[str, Any] = {"signed_in_at": now}
        if new_hash is not None:
            values["password_hash"] = new_hash
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(t).where(t.c.username == username).values(**values))
