"""API keys in PostgreSQL, read through a small cache so the hot path rarely touches the database.

Every known key is reloaded every ``ttl_s`` seconds, in the background while ``refresh`` runs:
requests go on with the keys cached meanwhile, so a slow database never holds them (a revocation
takes effect within ``ttl_s`` and the reload's time). Only the first load is waited for. A key
not in the cache is looked up once, so a key created a moment ago works at once. Unknown ids are
remembered for ``ttl_s`` too, so random keys cannot hammer the database. When the database is
down, the keys already cached keep working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.clock import utcnow
from leadrelay_shared.logging import get_logger

from ..auth import (
    ApiKey,
    KeyKind,
    KeyStoreUnavailable,
    Scope,
    hash_key,
    new_key,
    validate_new_key,
)
from .orm import api_keys

log = get_logger(__name__)


def _row_to_key(row: Any) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        kind=KeyKind(row.kind),
        source=row.source,
        scopes=frozenset(Scope(s) for s in row.scopes),
        key_hash=row.key_hash,
        allowed_origins=tuple(row.allowed_origins or ()),
        rate_limit=row.rate_limit,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class PgKeyStore:
    def __init__(self, engine: AsyncEngine, ttl_s: float = 5.0, timeout_s: float = 1.0) -> None:
        self._engine = engine
        self._ttl = ttl_s
        self._timeout = timeout_s
        self._keys: dict[str, ApiKey] = {}
        self._missing: dict[str, float] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._refreshing = False

    async def get(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        if self._loaded_at is None or (not self._refreshing and now - self._loaded_at > self._ttl):
            await self._reload(now)
        if key_id in self._keys:
            return self._keys[key_id]
        if now - self._missing.get(key_id, -1e9) < self._ttl:
            return None
        found = await self._fetch_one(key_id)
        if found is None:
            if len(self._missing) > 10_000:
                self._missing.clear()
            self._missing[key_id] = now
        else:
            self._keys[key_id] = found
        return found

    async def refresh(self) -> None:
        """Reload the keys every ``ttl_s`` until cancelled (intake's runtime runs it), so
        requests never wait for a reload. Without it (a one-off lookup), a request finding the
        keys stale reloads them itself."""
        # When the request that found the keys stale reloaded them, every request of that
        # moment waited: at 300 leads/s end to end, up to 5.9 s (each reload is bounded by 1 s,
        # and the waiting requests ran it again one after another).
        self._refreshing = True
        try:
            while True:
                due = (self._loaded_at or 0.0) + self._ttl
                await asyncio.sleep(max(due - time.monotonic(), 0.0))
                await self._reload(time.monotonic())
        finally:
            self._refreshing = False

    async def _reload(self, now: float) -> None:
        async with self._lock:
            if self._loaded_at is not None and now - self._loaded_at <= self._ttl:
                return
            try:
                rows = await asyncio.wait_for(self._select(sa.select(api_keys)), self._timeout)
            except Exception as exc:  # keep serving the cached keys while the database is away
                log.warning("api_keys_reload_failed", error=type(exc).__name__)
                self._loaded_at = now - self._ttl + 1.0  # try again in a second
                return
            self._keys = {row.key_id: _row_to_key(row) for row in rows}
            self._missing.clear()
            self._loaded_at = now

    async def _fetch_one(self, key_id: str) -> ApiKey | None:
        try:
            rows = await asyncio.wait_for(
                self._select(sa.select(api_keys).where(api_keys.c.key_id == key_id)), self._timeout
            )
        except Exception as exc:
            raise KeyStoreUnavailable(
                f"the key store did not answer: {type(exc).__name__}"
            ) from exc
        return _row_to_key(rows[0]) if rows else None

    async def _select(self, query: sa.Select[Any]) -> list[Any]:
        async with self._engine.connect() as conn:
            return list((await conn.execute(query)).all())


async def create_key(
    engine: AsyncEngine,
    *,
    source: str,
    scopes: Sequence[str],
    kind: KeyKind = KeyKind.SECRET,
    allowed_origins: Sequence[str] = (),
    rate_limit: str | None = None,
) -> tuple[str, ApiKey]:
    """Store a new key's hash and return the key itself (the only time it is ever seen)."""
    wanted = frozenset(Scope(s) for s in scopes)
    validate_new_key(kind, wanted)
    if rate_limit is not None:
        from limits import parse

        parse(rate_limit)  # raises ValueError naming the notation
    key, key_id = new_key(kind)
    record = ApiKey(
        key_id=key_id,
        kind=kind,
        source=source,
        scopes=wanted,
        key_hash=hash_key(key),
        allowed_origins=tuple(allowed_origins),
        rate_limit=rate_limit,
        created_at=utcnow(),
    )
    async with engine.begin() as conn:
        await conn.execute(
            api_keys.insert().values(
                key_id=key_id,
                kind=kind.value,
                source=source,
                scopes=sorted(wanted),
                key_hash=record.key_hash,
                allowed_origins=list(allowed_origins),
                rate_limit=rate_limit,
                created_at=record.created_at,
            )
        )
    return key, record


async def list_keys(engine: AsyncEngine) -> list[ApiKey]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))).all()
    return [_row_to_key(r) for r in rows]


async def revoke_key(engine: AsyncEngine, key_id: str) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(
            api_keys.update()
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    return bool(result.rowcount)
