"""The container's entrypoints: ``leadrelay migrate`` brings the schemas up to date on its own,
``leadrelay serve NAME`` serves one service without touching them (replicas never race to)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import httpx
import pytest

from devstack.ports import free_port
from devstack.stack import SERVICES
from tests.infra import Infra

from .helpers import leadrelay, own_group, wait_for

pytestmark = pytest.mark.integration


async def schemas_at_head(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            "SELECT table_schema FROM information_schema.tables"
            " WHERE table_name = 'alembic_version'"
        )
    finally:
        await conn.close()
    return {r["table_schema"] for r in rows}


async def test_migrate_brings_the_named_or_every_schema_up_to_date(database_url: str) -> None:
    one = await leadrelay(database_url, "migrate", "router")
    assert one.returncode == 0, one.stderr
    assert await schemas_at_head(database_url) == {"router"}

    unknown = await leadrelay(database_url, "migrate", "routr")
    assert unknown.returncode == 2
    assert "no such service: routr" in unknown.stderr

    every = await leadrelay(database_url, "migrate")
    assert every.returncode == 0, every.stderr
    assert await schemas_at_head(database_url) == {s.schema for s in SERVICES}
    again = await leadrelay(database_url, "migrate")  # a second run is harmless
    assert again.returncode == 0, again.stderr


async def test_serve_runs_one_service_and_leaves_migrating_to_migrate(
    database_url: str, infra: Infra
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "ROUTER_PORT": str(port),
        "ROUTER_CONSUMER_GROUP": await own_group(infra.bootstrap),
    }
    env.pop("LEADRELAY_MIGRATE_ON_START", None)
    command = [sys.executable, "-m", "devstack", "serve", "router"]

    def serve() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    early = serve()  # before its schema exists: it stops, and has created nothing
    _, err = await asyncio.to_thread(early.communicate, timeout=60)
    assert early.returncode != 0
    assert b"Application startup failed" in err
    assert await schemas_at_head(database_url) == set()

    migrated = await leadrelay(database_url, "migrate", "router")
    assert migrated.returncode == 0, migrated.stderr
    process = serve()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def ready() -> bool:
                try:
                    return (await http.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            assert await wait_for(ready)
    finally:
        process.terminate()
        await asyncio.to_thread(process.communicate, timeout=30)
