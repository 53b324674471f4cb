"""Where the active routing configuration comes from: the YAML file and the admin API.

Every version is stored in ``router.configs`` (its canonical document, checksum and source) and
the most recently activated one is active for every router instance: each polls the table and
swaps in a new version within ``ROUTER_CONFIG_RELOAD_INTERVAL_S``. The file is the seed: when its
content is a version the table has never seen (a deploy changed it), it is activated; otherwise
the table wins, so an edit through the admin API survives a restart. A file that fails
validation is refused with a logged error and the active configuration stays.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.configfile import WatchedFile
from leadrelay_shared.destinations import Destinations
from leadrelay_shared.logging import get_logger

from ..config import RoutingConfig, check_destinations, compile_config, from_document, parse
from ..errors import ConfigError
from . import orm

log = get_logger(__name__)


async def activate(engine: AsyncEngine, config: RoutingConfig, source: str, now: datetime) -> None:
    """Store a version (once) and make it the active one."""
    t = orm.configs
    stmt = insert(t).values(
        version=config.version,
        checksum=config.checksum,
        document=config.document(),
        source=source,
        created_at=now,
        activated_at=now,
    )
    async with engine.begin() as conn:
        await conn.execute(
            stmt.on_conflict_do_update(index_elements=[t.c.version], set_={"activated_at": now})
        )


async def known(engine: AsyncEngine, version: str) -> bool:
    t = orm.configs
    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(sa.func.count()).where(t.c.version == version))
        return bool(found)


async def documents(engine: AsyncEngine, versions: list[str]) -> dict[str, dict[str, Any]]:
    """The stored documents of ``versions`` that exist, by version."""
    t = orm.configs
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(t.c.version, t.c.document).where(t.c.version.in_(versions))
        )
        return {r.version: r.document for r in rows}


async def active_version(engine: AsyncEngine) -> str | None:
    t = orm.configs
    async with engine.connect() as conn:
        return await conn.scalar(
            sa.select(t.c.version).order_by(t.c.activated_at.desc(), t.c.version).limit(1)
        )


async def fetch(engine: AsyncEngine, version: str) -> RoutingConfig:
    t = orm.configs
    async with engine.connect() as conn:
        doc = await conn.scalar(sa.select(t.c.document).where(t.c.version == version))
    if doc is None:
        raise ConfigError("configs", [f"version {version} is not stored"])
    return compile_config(from_document(doc, f"stored version {version}"))


async def versions(engine: AsyncEngine, limit: int = 50) -> list[dict[str, Any]]:
    t = orm.configs
    query = (
        sa.select(t.c.version, t.c.checksum, t.c.source, t.c.created_at, t.c.activated_at)
        .order_by(t.c.activated_at.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


class ConfigStore(WatchedFile[RoutingConfig]):
    """Holds this instance's active configuration: the file seeds the table, the table wins."""

    def __init__(self, path: Path, destinations: Destinations) -> None:
        super().__init__(
            path,
            lambda text, source: check_destinations(
                parse(text, source, path.parent), destinations, source
            ),
            what="routing_config",
        )

    async def register(
        self, engine: AsyncEngine, config: RoutingConfig, text: str, now: datetime
    ) -> None:
        """A version the table has never seen (a deploy changed the file) becomes active."""
        if not await known(engine, config.version):
            await activate(engine, config, f"file:{self.path}", now)

    def adopt(self, config: RoutingConfig, text: str) -> None:
        """The table decides what is active (``refresh``), not the file."""

    async def activate(self, engine: AsyncEngine, now: datetime) -> None:
        await super().activate(engine, now)
        await self.refresh(engine)

    async def reload(self, engine: AsyncEngine, now: datetime) -> bool:
        await super().reload(engine, now)
        return await self.refresh(engine)

    async def refresh(self, engine: AsyncEngine) -> bool:
        """Adopt the version active in the database; True when it changed."""
        version = await active_version(engine)
        if version is None or version == self.current.version:
            return False
        previous, self.current = self.current.version, await fetch(engine, version)
        log.info("routing_config_reloaded", version=version, previous=previous)
        return True
