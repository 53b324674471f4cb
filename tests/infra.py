"""The real Kafka and PostgreSQL a test session runs on, and a fresh database per test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from leadrelay_shared.db import async_url


@dataclass
class Infra:
    bootstrap: str
    admin_dsn: str  # plain libpq DSN of the server's maintenance database

    def database_dsn(self, name: str) -> str:
        base, _, _ = self.admin_dsn.rpartition("/")
        return f"{base}/{name}"


async def create_database(infra: Infra) -> tuple[str, str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(infra.admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, async_url(infra.database_dsn(name))


async def drop_database(infra: Infra, name: str) -> None:
    conn = await asyncpg.connect(infra.admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
