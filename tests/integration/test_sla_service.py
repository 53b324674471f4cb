"""sla-monitor on the real PostgreSQL and Kafka: thousands of deadlines fire once and on time
with two schedulers (one restarted midway); a breached lead that gets worked sends the resolve
notice on every channel; a re-route request reaches router and the new owner's clock starts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from devstack.ports import free_port
from devstack.receiver import Receiver
from devstack.stack import ServiceSpec, Stack
from leadrelay_shared.contracts import ActivityLogged, Stage, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import start_group_at_end
from leadrelay_shared.migrate import upgrade
from sla_monitor import domain
from sla_monitor.adapters import orm
from sla_monitor.adapters.repository import row_of
from sla_monitor.config import parse
from tests.factories import mql
from tests.infra import Infra
from tests.integration.helpers import group_members, read_to_end, reads_showing, send, wait_for

pytestmark = pytest.mark.integration
SECRET = "whsec_aW50ZWdyYXRpb24tdGVzdC1zZWNyZXQ="


def sla_spec(name: str) -> ServiceSpec:
    return ServiceSpec(name, "sla_monitor", "SLA_", 0, "sla")


def start(stack: Stack, spec: ServiceSpec) -> None:
    port = free_port()
    stack.ports[spec.name] = port
    stack.start_service(spec, port)


async def test_thousands_of_deadlines_fire_once_on_time_across_a_restart(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(upgrade, "sla_monitor", database_url, orm.SCHEMA)
    policies = tmp_path / "sla.yaml"
    policies.write_text("""version: timers
calendars: [{id: always, always: true}]
policies: [{id: short, calendar: always, first_touch: 1s, warning_at: null}]
""")
    config = parse(policies.read_text())
    stack = Stack(
        data_dir=tmp_path,
        pick_free_ports=True,
        log_file=tmp_path / "sla.log",
        bootstrap=infra.bootstrap,
        database_url=database_url,
        extra_env={
            "SLA_POLICIES_PATH": str(policies),
            "SLA_CONSUMER_GROUP": f"it-sla-{uuid.uuid4().hex[:6]}",
            "SLA_CONSUMER_OFFSET_RESET": "latest",
        },
    )
    engine = make_engine(database_url)
    n = 2000
    try:
        for name in ("sla-1", "sla-2"):
            start(stack, sla_spec(name))
        await asyncio.to_thread(stack.wait_ready, 90)
        # Clocks due between 3 and 9 seconds from now, written as the consumer writes them.
        now = datetime.now(UTC)
        policy = config.policies[0]
        clocks = []
        for i in range(n):
            h = domain.Handoff(
                f"timer-{i}",
                uuid.uuid4(),
                Stage.MQL,
                domain.Person(f"rep-{i % 7}", "Rep"),
                "sdr",
                now + timedelta(seconds=2 + 6 * i / n),
            )
            clocks.append(row_of(domain.start_clock(h, policy, config.version)))
        async with engine.begin() as conn:
            await conn.execute(sa.insert(orm.clocks), clocks)
        # Stop one scheduler midway, start it again two seconds later.
        await asyncio.sleep(5)
        await asyncio.to_thread(stack.stop_service, "sla-1", 5)
        await asyncio.sleep(2)
        start(stack, sla_spec("sla-1"))

        async def all_fired() -> Any:
            async with engine.connect() as conn:
                count = (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(orm.alerts)
                        .where(orm.alerts.c.lead_id.like("timer-%"))
                    )
                ).scalar()
            return count if count is not None and count >= n else None

        assert await wait_for(all_fired, 60) == n
        await asyncio.sleep(1)  # nothing more may arrive
        async with engine.connect() as conn:
            a = orm.alerts
            rows = (
                await conn.execute(
                    sa.select(a.c.clock_id, a.c.level, a.c.scheduled_at, a.c.fired_at).where(
                        a.c.lead_id.like("timer-%")
                    )
                )
            ).all()
            still_due = (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(orm.clocks)
                    .where(orm.clocks.c.next_at.is_not(None), orm.clocks.c.lead_id.like("timer-%"))
                )
            ).scalar()
        assert len(rows) == n and len({r.clock_id for r in rows}) == n
        assert {r.level for r in rows} == {"breach"}
        assert still_due == 0

        async def outbox_drained() -> bool:  # every breach event published, then removed
            async with engine.connect() as conn:
                return not (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(orm.outbox)
                        .where(orm.outbox.c.lead_id.like("timer-%"))
                    )
                ).scalar()

        assert await wait_for(outbox_drained, 30)
        published = await read_to_end(
            infra.bootstrap,
            Topics.SLA,
            keep=lambda r: (
                r.key.startswith(b"timer-")
                and dict(r.headers)["ce_type"] == b"io.leadrelay.sla.breached"
            ),
        )
        assert len({dict(r.headers)["ce_id"] for r in published}) == n
        late = sorted((r.fired_at - r.scheduled_at).total_seconds() for r in rows)
        assert late[0] >= 0, "an alert fired before its deadline"
        assert late[-1] <= 1.0, (
            f"alerts late by up to {late[-1]:.2f}s (p99 {late[int(n * 0.99)]:.2f}s)"
        )
    finally:
        await asyncio.to_thread(stack.stop)
        await engine.dispose()


ROUTING = """version: it-sla
reps:
  - {{id: rep-a, name: Rep A, timezone: Europe/Paris, manager: boss}}
  - {{id: rep-b, name: Rep B, timezone: Europe/Paris, manager: boss}}
  - {{id: boss, name: The Boss}}
teams:
  - {{id: sdr, name: SDR, stages: [mql], members: [rep-a, rep-b], respect_working_hours: false}}
webhooks:
  - {{id: crm, url: "http://127.0.0.1:{port}/hooks/crm", secret: {{env: IT_CRM_SECRET}}}}
"""

POLICIES = """version: it-sla
calendars: [{{id: always, always: true}}]
policies:
  - {{id: fast, calendar: always, first_touch: 3s, warning_at: null, reroute_after: 5s}}
channels:
  - {{id: ops, type: webhook, url: "http://127.0.0.1:{port}/hooks/ops",
     secret: {{file: "{secret_file}"}}}}
  - {{id: slack, type: slack, url: "http://127.0.0.1:{port}/hooks/slack", secret: "{secret}",
     levels: [breach, resolved]}}
  - {{id: pd, type: pagerduty, url: "http://127.0.0.1:{port}/hooks/pd", secret: "{secret}",
     routing_key: {{env: IT_PD_ROUTING_KEY}}, levels: [breach, resolved]}}
"""


async def test_resolve_notice_and_reroute_through_router(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(
        secrets={h: SECRET for h in ("crm", "ops", "slack", "pd")}, port=free_port()
    )
    receiver.start()
    routing, policies = tmp_path / "routing.yaml", tmp_path / "sla.yaml"
    # secrets by reference: the files hold none (the crm's and the pager's from the
    # environment, the ops channel's from a file)
    secret_file = tmp_path / "ops-secret"
    secret_file.write_text(SECRET + "\n")
    routing.write_text(ROUTING.format(port=receiver.port))
    policies.write_text(POLICIES.format(port=receiver.port, secret=SECRET, secret_file=secret_file))
    assert "rk-test" not in policies.read_text() and SECRET not in routing.read_text()
    suffix = uuid.uuid4().hex[:6]
    groups = {"router": f"it-router-{suffix}", "sla-monitor": f"it-sla-{suffix}"}
    stack = Stack(
        data_dir=tmp_path,
        pick_free_ports=True,
        log_file=tmp_path / "svc.log",
        bootstrap=infra.bootstrap,
        database_url=database_url,
        extra_env={
            "ROUTER_CONFIG_PATH": str(routing),
            "SLA_POLICIES_PATH": str(policies),
            "ROUTER_CONSUMER_GROUP": groups["router"],
            "SLA_CONSUMER_GROUP": groups["sla-monitor"],
            "ROUTER_WEBHOOK_SCHEDULE_S": "0.2,0.5",
            "SLA_WEBHOOK_SCHEDULE_S": "0.2,0.5",
            "IT_CRM_SECRET": SECRET,
            "IT_PD_ROUTING_KEY": "rk-test",
        },
    )
    try:
        for group in groups.values():
            await start_group_at_end(infra.bootstrap, group)
        stack.start_services(only=("router", "sla-monitor"))
        await asyncio.to_thread(stack.wait_ready, 90)
        for group in groups.values():
            assert await wait_for(lambda g=group: group_members(infra.bootstrap, g), 60) == 1
        now = datetime.now(UTC)
        worked = mql(f"w-{suffix}@acme.example", now)
        ignored = mql(f"i-{suffix}@acme.example", now)
        await send(infra.bootstrap, worked, ignored)
        sla = httpx.AsyncClient(
            base_url=stack.url("sla-monitor"),
            timeout=10,
            headers={"Authorization": f"Bearer {stack.admin_token('sla-monitor')}"},
        )

        # Both leads reach the CRM, and each gets a clock for its owner.
        crm = {
            lead: (await receiver.wait_for("crm", lead, 30))[0].payload["data"]
            for lead in (worked.lead_id, ignored.lead_id)
        }
        breach = await receiver.wait_for("ops", worked.lead_id, 15)
        assert breach[0].payload["type"] == "sla.breached"
        data = breach[0].payload["data"]
        assert data["owner_id"] == crm[worked.lead_id]["owner"]["id"]
        assert data["manager"]["id"] == "boss" and data["time_zone"] == "Europe/Paris"

        # The owner calls: the resolve notice follows on every channel.
        await send(
            infra.bootstrap,
            ActivityLogged(
                lead_id=worked.lead_id,
                occurred_at=datetime.now(UTC),
                received_at=datetime.now(UTC),
                activity_type="call",
                actor_id=data["owner_id"],
            ),
        )

        async def resolved() -> Any:
            got = [
                h
                for h in receiver.received
                if h.hook == "ops"
                and h.payload["data"]["lead_id"] == worked.lead_id
                and h.payload["type"] == "sla.resolved"
            ]
            return got or None

        notice = (await wait_for(resolved, 15))[0]
        assert "worked" in notice.payload["data"]["summary"]
        pd = await wait_for(
            lambda: _settle(
                lambda: [
                    h.payload
                    for h in receiver.received
                    if h.hook == "pd"
                    and h.payload["dedup_key"] == f"leadrelay-sla-{data['clock_id']}"
                ],
                2,
            ),
            15,
        )
        assert [p["event_action"] for p in pd] == ["trigger", "resolve"]
        slack = [h.payload["text"] for h in receiver.received if h.hook == "slack"]
        assert any(t.startswith("[sla.resolved]") for t in slack)

        # The other lead stays unworked: re-route requested, router picks the other rep, and
        # the new owner's clock starts.
        async def two_clocks() -> Any:
            body = (await sla.get(f"/v1/sla/leads/{ignored.lead_id}")).json()
            return body if len(body["clocks"]) >= 2 else None

        body = await wait_for(two_clocks, 30)
        first, second = body["clocks"][0], body["clocks"][1]
        assert first["status"] == "reassigned" and first["last_level"] == "reroute"
        assert second["status"] == "open" and second["owner_id"] != first["owner_id"]
        assert [a["level"] for a in body["alerts"]][:3] == ["breach", "reroute", "resolved"]
        rerouted = await wait_for(
            lambda: _settle(lambda: receiver.of("crm", ignored.lead_id), 2), 15
        )
        assert rerouted[-1].payload["data"]["reassignment"] is True
        assert rerouted[-1].payload["data"]["owner"]["id"] == second["owner_id"]

        # What ops see: breaches by team, compliance per rep.
        breaches = (await sla.get("/v1/sla/breaches", params={"team_id": "sdr"})).json()["items"]
        assert {b["lead_id"] for b in breaches} >= {worked.lead_id, ignored.lead_id}
        compliance = (await sla.get("/v1/sla/compliance", params={"by": "team"})).json()
        row = next(i for i in compliance["items"] if i["team"] == "sdr")
        assert row["breached"] >= 2 and row["measured"] >= 2
        channels = {c["id"]: c for c in (await sla.get("/v1/sla/channels")).json()["items"]}
        assert channels["pd"]["format"] == "pagerduty"
        assert channels["pd"]["deliveries"]["delivered"] >= 2
        sent = (await sla.get("/v1/sla/deliveries", params={"lead_id": worked.lead_id})).json()
        assert {d["event_type"] for d in sent["items"]} == {"sla.breached", "sla.resolved"}
        metrics = (await sla.get("/metrics")).text
        assert "leadrelay_sla_alert_lateness_seconds_count" in metrics
        assert not receiver.rejected
        pages = receiver.of("pd")
        assert pages and {p.payload["routing_key"] for p in pages} == {"rk-test"}
        # no read of either service shows a secret, whether given in clear or by reference
        async with httpx.AsyncClient(
            base_url=stack.url("router"),
            timeout=10,
            headers={"Authorization": f"Bearer {stack.admin_token('router')}"},
        ) as router:
            assert await reads_showing(router, SECRET, "rk-test") == []
        assert await reads_showing(sla, SECRET, "rk-test") == []
        await sla.aclose()
    finally:
        await asyncio.to_thread(stack.stop)
        receiver.stop()


async def _settle(probe: Any, n: int) -> Any:
    value = probe()
    return value if len(value) >= n else None
