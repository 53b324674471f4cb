"""Alembic, run programmatically: each service owns a schema and its own version table."""

from __future__ import annotations

import asyncio
from importlib import resources
from types import ModuleType

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from sqlalchemy.engine import Connection

from .db import make_engine


def upgrade(package: str, database_url: str, schema: str, revision: str = "head") -> None:
    """Bring ``schema`` to the newest revision of ``package``'s migrations, or to
    ``revision`` (sync; call before serving)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files(package) / "migrations"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["schema"] = schema
    command.upgrade(cfg, revision)


def run_env(context: EnvironmentContext | ModuleType, target_metadata: sa.MetaData) -> None:
    """Body of every service's ``migrations/env.py``: online migrations over asyncpg.
    ``context`` is alembic's ``context`` module, a proxy of the running environment."""
    url: str = context.config.attributes["database_url"]
    schema: str = context.config.attributes["schema"]

    def do_run(connection: Connection) -> None:
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = make_engine(url, pool_size=1)
        try:
            async with engine.begin() as conn:
                # Serialise concurrent starts of the same service.
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema}
                )
                await conn.run_sync(do_run)
        finally:
            await engine.dispose()

    asyncio.run(run())
