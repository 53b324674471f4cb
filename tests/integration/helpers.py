"""Helpers the integration tests share: sending events, reading topics back (no consumer group:
assigned partitions from the start), waiting for a condition, a group's members, a service's
app served in process, the state of a service's tables and of the topics, the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.codec import encode
from leadrelay_shared.contracts import Topics
from leadrelay_shared.kafka import make_producer, read_history, send_record, start_group_at_end


async def read_to_end(
    bootstrap: str, topic: str, keep: Callable[[ConsumerRecord], bool] = lambda r: True
) -> list[ConsumerRecord]:
    """Every record on ``topic`` up to its end offsets at the time of the call."""
    return [r async for chunk in read_history(bootstrap, [topic]) for r in chunk if keep(r)]


async def committed_offset(
    bootstrap: str, group: str, topic: str, partition: int = 0
) -> int | None:
    """The offset ``group`` has committed for one partition (read without joining the group)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await reader.start()
    try:
        return await reader.committed(TopicPartition(topic, partition))  # type: ignore[no-any-return]
    finally:
        await reader.stop()


async def send(bootstrap: str, *events: Any) -> None:
    producer = make_producer(bootstrap, client_id="router-test")
    await producer.start()
    try:
        await asyncio.gather(*(send_record(producer, encode(e), 10) for e in events))
    finally:
        await producer.stop()


async def wait_for(probe: Any, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def group_members(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        try:
            (response,) = await admin.describe_consumer_groups([group])
        except KafkaError:  # the group does not exist yet
            return 0
        # (error_code, group_id, state, protocol_type, protocol, members, ...)
        group_row = response.groups[0]
        return len(group_row[5]) if group_row[2] == "Stable" else 0
    finally:
        await admin.close()


@asynccontextmanager
async def served(app: FastAPI, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` running in this process (its lifespan started), and a client that calls it
    with ``token``."""
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://app",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            yield client


async def settled(engine: AsyncEngine, metadata: sa.MetaData, bootstrap: str) -> dict[str, Any]:
    """``state`` once it stops changing (the service's relay emptied its outbox)."""
    previous = None
    for _ in range(50):
        now = await state(engine, metadata, bootstrap)
        if now == previous:
            return now
        previous = now
        await asyncio.sleep(0.5)
    raise AssertionError("the service never settled")


async def state(engine: AsyncEngine, metadata: sa.MetaData, bootstrap: str) -> dict[str, Any]:
    """Every table of ``metadata`` (its rows' count and digest) and every topic's end offsets:
    equal before and after something that must change nothing."""
    found: dict[str, Any] = {}
    async with engine.connect() as conn:
        for table in metadata.sorted_tables:
            name = f"{table.schema}.{table.name}"
            found[name] = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' "
                        f"ORDER BY t::text), '')) FROM {name} t"
                    )
                )
            ).one()
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await reader.start()
    try:
        partitions = [
            TopicPartition(topic, p) for topic, n in Topics.PARTITIONS.items() for p in range(n)
        ]
        found["offsets"] = await reader.end_offsets(partitions)
    finally:
        await reader.stop()
    return found


async def leadrelay(
    database_url: str, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``leadrelay`` command line, in a process of its own, on ``database_url``, with
    ``stdin`` as its standard input."""
    env = {**os.environ, "DATABASE_URL": database_url}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "devstack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


async def own_group(bootstrap: str) -> str:
    """A consumer group of a service process's own that reads leadrelay's topics from their
    ends: a service started by a test handles only that test's events, and sends nothing of
    the others' history."""
    group = f"t-{uuid.uuid4()}"
    await start_group_at_end(bootstrap, group)
    return group


async def reads_showing(client: httpx.AsyncClient, *secrets: str) -> list[str]:
    """Every read of the service's API (each GET path of its OpenAPI document without a path
    parameter), asked; the paths whose answer shows any of ``secrets``."""
    spec = (await client.get("/openapi.json")).json()
    shown = []
    for path, operations in spec["paths"].items():
        if "get" in operations and "{" not in path:
            answer = await client.get(path)
            assert answer.status_code < 500, (path, answer.text)
            if any(s in answer.text for s in secrets):
                shown.append(path)
    return shown
