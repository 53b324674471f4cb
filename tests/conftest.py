"""Fixtures that start the real parts once per test session.

Kafka and PostgreSQL are started only by tests that ask for them (integration and e2e), on free
ports and in a temporary folder, unless KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL point elsewhere.
Every test that touches the database gets a database of its own.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench.common import remove_scratch
from devstack import kafka, postgres
from leadrelay_shared.kafka import ensure_topics
from tests.infra import Infra, create_database, drop_database


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    workdir = Path(tempfile.mkdtemp(prefix="leadrelay-test-"))
    pg_server = kafka_server = None
    try:
        admin = os.environ.get("DATABASE_URL", "").replace("+asyncpg", "")
        if not admin:
            pg_server = postgres.start(workdir / "pg", durable=False, log_path=workdir / "pg.log")
            admin = pg_server.admin_url("postgres")
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        if not bootstrap:
            kafka_server = kafka.start(workdir / "kafka", log_path=workdir / "kafka.log")
            bootstrap = kafka_server.bootstrap
        asyncio.run(ensure_topics(bootstrap))
        yield Infra(bootstrap=bootstrap, admin_dsn=admin)
    finally:
        if kafka_server:
            kafka_server.stop()
        if pg_server:
            pg_server.stop()
        remove_scratch(workdir)  # each session's cluster and log, as the benchmarks do


@pytest.fixture
async def database_url(infra: Infra) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name, url = await create_database(infra)
    yield url
    await drop_database(infra, name)
