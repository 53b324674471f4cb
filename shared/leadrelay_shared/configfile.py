"""A versioned configuration file, reloaded when it changes, every version recorded.

Scoring models and SLA policies are both YAML files edited by people. The first time a version
is loaded it is registered (version, checksum, source) in the service's table, so everything
stamped with a version can be traced to the exact file. A file that fails validation, or that
reuses a registered version with different content, is refused with a logged error and the
active version stays: a bad edit never stops the service.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from .logging import get_logger
from .yamlconf import ConfigFileError

log = get_logger(__name__)


class Versioned(Protocol):
    @property
    def version(self) -> str: ...
    @property
    def checksum(self) -> str: ...


C = TypeVar("C", bound=Versioned)


class VersionConflict(ValueError):
    """A version already registered with other content."""


async def register(
    engine: AsyncEngine, table: sa.Table, config: Versioned, source: str, now: datetime
) -> None:
    """Record a version; the same version with another checksum is a ``VersionConflict``."""
    t = table
    async with engine.begin() as conn:
        await conn.execute(
            insert(t)
            .values(
                version=config.version,
                checksum=config.checksum,
                source=source,
                first_loaded_at=now,
                last_activated_at=now,
            )
            .on_conflict_do_nothing()
        )
        known = (
            await conn.execute(sa.select(t.c.checksum).where(t.c.version == config.version))
        ).scalar_one()
        if known != config.checksum:
            raise VersionConflict(
                f"version {config.version} is already registered with other "
                "content; give the changed file a new version"
            )
        await conn.execute(
            sa.update(t).where(t.c.version == config.version).values(last_activated_at=now)
        )


class WatchedFile(Generic[C]):
    """Holds the active version; ``reload`` swaps in a new one when the file changes.

    A version is registered in ``table`` (``register``) before it becomes active; a service
    whose versions live elsewhere overrides ``register`` and ``adopt``."""

    def __init__(
        self,
        path: Path | None,
        parse: Callable[[str, str], C],
        *,
        what: str,
        table: sa.Table | None = None,
        default: Callable[[], str] | None = None,
    ) -> None:
        self.path = path
        self._parse = parse
        self._table = table
        self._what = what
        text = path.read_text() if path else (default() if default else "")
        self.current: C = parse(text, str(path or f"default {what}"))
        self._text = text
        self._mtime = path.stat().st_mtime_ns if path else None

    async def register(self, engine: AsyncEngine, config: C, text: str, now: datetime) -> None:
        assert self._table is not None
        await register(engine, self._table, config, text, now)

    def adopt(self, config: C, text: str) -> None:
        """Make a registered version the active one."""
        previous, self.current, self._text = self.current.version, config, text
        log.info(f"{self._what}_reloaded", version=config.version, previous=previous)

    async def activate(self, engine: AsyncEngine, now: datetime) -> None:
        await self.register(engine, self.current, self._text, now)
        log.info(f"{self._what}_active", version=self.current.version)

    async def reload(self, engine: AsyncEngine, now: datetime) -> bool:
        """Load the file again if it changed; True when a new version became active."""
        if self.path is None:
            return False
        mtime = self.path.stat().st_mtime_ns
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        text = self.path.read_text()
        try:
            candidate = self._parse(text, str(self.path))
            await self.register(engine, candidate, text, now)
        except (ConfigFileError, VersionConflict) as exc:
            log.error(
                f"{self._what}_refused",
                path=str(self.path),
                error=str(exc),
                active=self.current.version,
            )
            return False
        self.adopt(candidate, text)
        return True
