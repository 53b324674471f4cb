"""Where the active scoring model comes from: a YAML file, reloaded when it changes.

A version is registered in ``scoring.models`` the first time it is loaded, with its checksum and
source, so every score's ``model_version`` can be traced to the exact rules that made it. A file
that fails validation, or that reuses a registered version with different rules, is refused with
a logged error and the current model stays active: a bad edit never stops scoring.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from leadrelay_shared.logging import get_logger
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import ModelConflict
from ..model import ModelError, ScoringModel, default_text, parse
from . import orm

log = get_logger(__name__)


async def register(engine: AsyncEngine, model: ScoringModel, source: str, now: datetime) -> None:
    """Record a model version; the same version with other rules is a ``ModelConflict``."""
    t = orm.models
    async with engine.begin() as conn:
        await conn.execute(insert(t).values(
            version=model.version, checksum=model.checksum, source=source, first_loaded_at=now,
            last_activated_at=now).on_conflict_do_nothing())
        known = (await conn.execute(sa.select(t.c.checksum).where(
            t.c.version == model.version))).scalar_one()
        if known != model.checksum:
            raise ModelConflict(f"version {model.version} is already registered with other "
                                "rules; give the changed model a new version")
        await conn.execute(sa.update(t).where(t.c.version == model.version)
                           .values(last_activated_at=now))


class ModelStore:
    """Holds the active model; ``watch`` swaps in a new version when the file changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        text = path.read_text() if path else default_text()
        self.current = parse(text, str(path or "default_model.yaml"))
        self._text = text
        self._mtime = path.stat().st_mtime_ns if path else None

    async def activate(self, engine: AsyncEngine, now: datetime) -> None:
        await register(engine, self.current, self._text, now)
        log.info("scoring_model_active", version=self.current.version)

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
            candidate = parse(text, str(self.path))
            await register(engine, candidate, text, now)
        except (ModelError, ModelConflict) as exc:
            log.error("scoring_model_refused", path=str(self.path), error=str(exc),
                      active=self.current.version)
            return False
        previous, self.current, self._text = self.current.version, candidate, text
        log.info("scoring_model_reloaded", version=candidate.version, previous=previous)
        return True

    async def watch(self, engine: AsyncEngine, now: Callable[[], datetime],
                    interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload(engine, now())
            except OSError as exc:
                log.error("scoring_model_unreadable", path=str(self.path), error=repr(exc))

