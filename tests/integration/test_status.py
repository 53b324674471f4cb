"""``leadrelay status`` against real Kafka and PostgreSQL: what it says of services up and
down, a group's lag, an outbox's backlog, dead and waiting deliveries, and SLA clocks."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from devstack.ports import free_port
from leadrelay_shared.clock import utcnow
from leadrelay_shared.kafka import ensure_topics, make_producer
from tests.infra import Infra

from .helpers import leadrelay, own_group, wait_for

pytestmark = pytest.mark.integration


async def seed(database_url: str) -> None:
    """Two rows in scoring's outbox for a minute, a dead webhook, an alert waiting, and two open
    clocks, one of them past its deadline."""
    now = utcnow()
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        for _ in range(2):
            await conn.execute(
                "INSERT INTO scoring.outbox (event_id, event_type, topic, lead_id, payload,"
                " created_at) VALUES ($1, 'io.leadrelay.lead.scored', 'leadrelay.scoring.v1',"
                " 'lead-1', '{}', $2)",
                uuid.uuid4(),
                now - timedelta(seconds=60),
            )
        for schema, state in (("router", "dead"), ("sla", "pending"), ("router", "delivered")):
            await conn.execute(
                f"INSERT INTO {schema}.webhook_deliveries (id, endpoint_id, url, event_type,"
                " lead_id, payload, status) VALUES ($1, 'crm', 'https://crm.example/h',"
                " 'lead.assigned', 'lead-1', '{}', $2)",
                str(uuid.uuid4()),
                state,
            )
        for due in (now - timedelta(minutes=5), now + timedelta(hours=1)):
            await conn.execute(
                "INSERT INTO sla.clocks (id, lead_id, assignment_id, stage, phase, owner_id,"
                " team_id, policy_id, policy_version, zone, status, started_at, deadline_s,"
                " due_at, due_text) VALUES ($1, 'lead-1', $2, 'mql', 0, 'rep-a', 'sdr', 'p',"
                " 'v1', 'UTC', 'open', $3, 3600, $4, 'in an hour')",
                uuid.uuid4(),
                uuid.uuid4(),
                now - timedelta(hours=1),
                due,
            )
    finally:
        await conn.close()


async def lagging_group(bootstrap: str) -> tuple[str, str]:
    """A group three records behind on a topic of its own."""
    topic, group = f"leadrelay.status-{uuid.uuid4().hex[:8]}", f"t-status-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, {topic: 1})
    producer = make_producer(bootstrap, client_id="t-status")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, value=b"{}", key=f"k{i}".encode(), partition=0)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.commit({tp: 2})
    finally:
        await consumer.stop()
    return topic, group


async def test_status_tells_what_is_up_behind_waiting_and_dead(
    database_url: str, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrated = await leadrelay(database_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    await seed(database_url)
    topic, behind = await lagging_group(infra.bootstrap)

    port = free_port()
    group = await own_group(infra.bootstrap)
    monkeypatch.setenv("ROUTER_CONSUMER_GROUP", group)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", infra.bootstrap)
    monkeypatch.setenv("LEADRELAY_ROUTER_URL", f"http://127.0.0.1:{port}")
    for name in ("INTAKE", "SCORING", "SLA_MONITOR", "ANALYTICS", "CONSOLE"):
        monkeypatch.setenv(f"LEADRELAY_{name}_URL", f"http://127.0.0.1:{free_port()}")
    router = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "devstack", "serve", "router"),
        env={**os.environ, "DATABASE_URL": database_url, "ROUTER_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:

        async def ready() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        assert await wait_for(ready)
        done = await leadrelay(database_url, "status", "--json")
        table = await leadrelay(database_url, "status")
    finally:
        router.terminate()
        await asyncio.wait_for(router.wait(), 30)

    assert done.returncode == 1, done.stderr  # something is down and something is dead
    status = json.loads(done.stdout)
    services = {s["service"]: s for s in status["services"]}
    assert services["router"]["ready"] is True
    assert services["intake"]["up"] is False
    lag = [g for g in status["lag"] if g["group"] == behind]
    assert lag == [
        {"group": behind, "topic": topic, "partition": 0, "committed": 2, "end": 5, "lag": 3}
    ]
    outbox = {o["schema"]: o for o in status["outboxes"]}
    assert outbox["scoring"]["backlog"] == 2 and outbox["scoring"]["oldest_s"] >= 60
    assert outbox["router"]["backlog"] == 0
    deliveries = {d["schema"]: d for d in status["deliveries"]}
    assert deliveries["sla"] == {"schema": "sla", "what": "alerts", "pending": 1, "dead": 0}
    assert (deliveries["router"]["pending"], deliveries["router"]["dead"]) == (0, 1)
    assert status["clocks"] == {"open": 2, "breached": 1}
    assert "1 dead webhooks (router)" in status["problems"]
    assert "intake is down" in status["problems"]
    assert status["healthy"] is False

    assert table.returncode == 1
    assert "\033[" not in table.stdout  # not a terminal: no colours
    assert "SLA clocks: 2 open, 1 past their deadline" in table.stdout
    router_line = next(line for line in table.stdout.splitlines() if "router " in line)
    assert "ready" in router_line and "not ready" not in router_line


async def test_each_service_measures_what_waits_in_its_tables(database_url: str) -> None:
    from prometheus_client import REGISTRY
    from sqlalchemy.ext.asyncio import AsyncEngine

    from leadrelay_shared import backlog
    from leadrelay_shared.db import make_engine
    from router.adapters import orm as router
    from scoring.adapters import orm as scoring
    from sla_monitor.adapters import orm as sla

    migrated = await leadrelay(database_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    await seed(database_url)
    engine: AsyncEngine = make_engine(database_url)
    try:
        await backlog.measure(engine, scoring.outbox, None, utcnow())
        await backlog.measure(engine, router.outbox, router.deliveries, utcnow())
        await backlog.measure(engine, sla.outbox, sla.deliveries, utcnow())
    finally:
        await engine.dispose()

    def gauge(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert gauge("leadrelay_outbox_backlog", schema="scoring") == 2
    assert (gauge("leadrelay_outbox_oldest_seconds", schema="scoring") or 0) >= 60
    assert gauge("leadrelay_outbox_backlog", schema="router") == 0
    assert gauge("leadrelay_webhook_queue", schema="router", status="dead") == 1
    assert gauge("leadrelay_webhook_queue", schema="sla", status="pending") == 1
    assert gauge("leadrelay_webhook_queue", schema="router", status="pending") == 0
