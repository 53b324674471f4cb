"""router on the real PostgreSQL and Kafka: two processes sharing a pool, the admin API,
re-routing through Kafka, and webhook endpoints that go away."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from devstack.ports import free_port
from devstack.receiver import Receiver
from devstack.stack import ServiceSpec, Stack
from leadrelay_shared.contracts import RerouteRequested
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import start_group_at_end
from leadrelay_shared.migrate import upgrade
from router.adapters import orm
from tests.factories import T0
from tests.infra import Infra
from tests.integration.helpers import group_members, reads_showing, send, wait_for
from tests.integration.routing import mql, router_app

pytestmark = pytest.mark.integration
SECRET = "whsec_aW50ZWdyYXRpb24tdGVzdC1zZWNyZXQ="
REPS = ("rep-a", "rep-b", "rep-c", "rep-d")


def routing_yaml(port: int, extra: str = "") -> str:
    return f"""version: it-1
reps: [{", ".join(f"{{id: {r}, name: {r}}}" for r in REPS)}]
teams:
  - {{id: sdr, name: SDR, stages: [mql, sql], members: [{", ".join(REPS)}],
     respect_working_hours: false}}
webhooks:
  - {{id: crm, url: "http://127.0.0.1:{port}/hooks/crm", secret: "{SECRET}"}}
  - {{id: ops, url: "http://127.0.0.1:{port}/hooks/ops", secret: "{SECRET}",
     events: [webhook.dead_lettered]}}
{extra}"""


async def test_two_router_processes_share_one_pool_fairly(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(free_port()).replace("  - {id: crm", "  - {id: crm-unused"))
    group = f"it-router-{uuid.uuid4().hex[:6]}"
    stack = Stack(
        data_dir=tmp_path,
        pick_free_ports=True,
        log_file=tmp_path / "routers.log",
        bootstrap=infra.bootstrap,
        database_url=database_url,
        extra_env={
            "ROUTER_CONFIG_PATH": str(config),
            "ROUTER_CONSUMER_GROUP": group,
            "ROUTER_CONSUMER_MAX_RECORDS": "20",
        },
    )
    engine = make_engine(database_url)
    try:
        await start_group_at_end(infra.bootstrap, group)
        for name in ("router-1", "router-2"):
            port = free_port()
            stack.ports[name] = port
            stack.start_service(ServiceSpec(name, "router", "ROUTER_", port, "router"), port)
        await asyncio.to_thread(stack.wait_ready, 90)

        # wait for both: a group that is stable with the first member alone must not end the wait
        async def both_joined() -> bool:
            return await group_members(infra.bootstrap, group) == 2

        assert await wait_for(both_joined, 60)
        n = 400
        await send(infra.bootstrap, *(mql(i) for i in range(n)))

        async def assignments() -> list[Any]:
            async with engine.connect() as conn:
                return list(
                    (
                        await conn.execute(
                            sa.select(orm.assignments.c.owner_id, orm.assignments.c.decision)
                        )
                    ).all()
                )

        async def all_assigned() -> bool:
            return len(await assignments()) >= n

        await wait_for(all_assigned, 90)
        rows = await assignments()
        assert len(rows) == n
        owners = Counter(r.owner_id for r in rows)
        assert max(owners.values()) - min(owners[r] for r in REPS) <= 1, owners
        # No pointer position was used twice or skipped: each appears n / 4 times.
        positions = Counter(r.decision["pointer_before"] for r in rows)
        assert positions == {0: n // 4, 1: n // 4, 2: n // 4, 3: n // 4}
    finally:
        await asyncio.to_thread(stack.stop)
        await engine.dispose()


async def test_admin_api_reroute_and_webhooks(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    receiver = Receiver(secrets={"crm": SECRET, "ops": SECRET}, port=free_port())
    receiver.start()
    config = tmp_path / "routing.yaml"
    config.write_text(routing_yaml(receiver.port))
    try:
        async with router_app(infra, database_url, config) as api:
            first = (await api.get("/v1/routing/config")).json()
            assert first["version"].startswith("it-1+")
            # a secret given in clear is used, never shown: not here, nor by any other read
            assert {w["secret"] for w in first["document"]["webhooks"]} == {"(hidden)"}
            assert await reads_showing(api, SECRET) == []

            # Changes need the admin token; a bad document is refused naming the field.
            denied = await api.patch(
                "/v1/routing/reps/rep-a",
                json={"paused": True},
                headers={"authorization": "Bearer nope"},
            )
            assert denied.status_code == 401
            bad = await api.put("/v1/routing/config", content="version: x\nreps: []\nteams: []\n")
            assert bad.status_code == 422 and "reps" in bad.json()["detail"]

            # Pause rep-a through the API: a new version every instance adopts.
            paused = (await api.patch("/v1/routing/reps/rep-a", json={"paused": True})).json()
            assert paused["diff"]["reps"]["changed"]["rep-a"]["paused"]["to"] is True
            csv = "id,name,domains,owner\nacc-1,Company One,company1.example,rep-c\n"
            imported = (await api.post("/v1/routing/accounts/import", content=csv)).json()
            assert imported["imported"] == 1
            versions = (await api.get("/v1/routing/config/versions")).json()["items"]
            assert len(versions) == 3 and versions[0]["version"] == imported["version"]
            diff = (
                await api.get(
                    "/v1/routing/config/diff",
                    params={"from": first["version"], "to": imported["version"]},
                )
            ).json()["diff"]
            assert diff["reps"]["changed"]["rep-a"]["paused"] == {"from": False, "to": True}
            assert diff["accounts"]["added"] == ["acc-1"]
            unknown = await api.get(
                "/v1/routing/config/diff", params={"from": "nope", "to": imported["version"]}
            )
            assert unknown.status_code == 404 and "from" in unknown.json()["detail"]
            states = (await api.get("/v1/routing/reps")).json()
            by_rep = {r["rep_id"]: r for r in states["items"]}
            assert states["version"] == imported["version"]
            assert by_rep["rep-a"]["state"] == "paused" and by_rep["rep-b"]["state"] == "available"
            assert by_rep["rep-b"]["teams"] == ["sdr"] and by_rep["rep-b"]["today"] == 0

            # A lead of an account goes to its owner; another to round robin, skipping rep-a.
            await send(infra.bootstrap, mql(1), mql(2))
            lead1, lead2 = mql(1).lead_id, mql(2).lead_id

            async def timeline(lead: str) -> Any:
                r = await api.get(f"/v1/leads/{lead}/assignments")
                return r.json() if r.status_code == 200 else None

            t1 = await wait_for(lambda: timeline(lead1))
            t2 = await wait_for(lambda: timeline(lead2))
            assert t1["owner"] == "rep-c" and t1["items"][0]["strategy"] == "account_owner"
            assert t2["owner"] == "rep-b", t2
            assert t2["items"][0]["skipped"][0]["rule_id"] == "rep.paused"
            # committed decisions are counted by strategy and the rule that settled each
            exposed = (await api.get("/metrics")).text
            for strategy in ("account_owner", "round_robin"):
                counted = rf'reason="[a-z_.]+",strategy="{strategy}"}} [1-9]'
                assert re.search(r"leadrelay_routing_decisions_total\{" + counted, exposed)

            # Re-route by an operator: never the current owner.
            rerouted = (
                await api.post(f"/v1/leads/{lead2}/reroute", json={"reason": "rep on leave"})
            ).json()
            assert rerouted["kind"] == "reroute" and rerouted["previous_owner_id"] == "rep-b"
            assert rerouted["owner_id"] not in ("rep-a", "rep-b")

            # Re-route requested through Kafka (as sla-monitor does), for the current assignment.
            current = (await timeline(lead2))["items"][-1]
            await send(
                infra.bootstrap,
                RerouteRequested(
                    lead_id=lead2,
                    occurred_at=T0,
                    reason="SLA breached",
                    requested_by="sla-monitor",
                    assignment_id=uuid.UUID(current["id"]),
                ),
            )
            t2 = await wait_for(lambda: _longer(timeline(lead2), 3))
            assert t2["items"][-1]["previous_owner_id"] == rerouted["owner_id"]

            # Every assignment reached the CRM once, signed (the receiver verifies signatures).
            async def crm() -> Any:
                ids = [h.webhook_id for h in receiver.received if h.hook == "crm"]
                return ids if len(ids) >= 4 else None

            ids = await wait_for(crm)
            assert len(ids) == len(set(ids)) == 4 and not receiver.rejected

            # The CRM goes away (410): the endpoint is disabled and ops get an alert.
            receiver.gone.add("crm")
            await send(infra.bootstrap, mql(3))

            async def disabled() -> Any:
                items = (await api.get("/v1/webhooks")).json()["items"]
                crm_state = next(i for i in items if i["id"] == "crm")
                return crm_state if crm_state["disabled_at"] else None

            state = await wait_for(disabled)
            assert "410" in state["disabled_reason"] and state["deliveries"].get("gone") == 1
            alert = await wait_for(lambda: _first(receiver, "ops"))
            assert alert.payload["type"] == "webhook.dead_lettered"
            assert "410" in alert.payload["data"]["summary"]
            gone = (await api.get("/v1/deliveries", params={"status": "gone"})).json()["items"][0]
            detail = (await api.get(f"/v1/deliveries/{gone['id']}")).json()
            assert [a["status_code"] for a in detail["attempt_log"]] == [410]

            # Back again: enable, replay the gone delivery, and it arrives.
            receiver.gone.clear()
            assert (await api.post("/v1/webhooks/crm/enable")).json() == {"enabled": True}
            assert (await api.post("/v1/deliveries/replay", params={"status": "gone"})).json() == {
                "replayed": 1
            }
            ids = await wait_for(lambda: _count(receiver, "crm", 5))
            assert gone["id"] in ids
    finally:
        receiver.stop()


async def _longer(probe: Any, n: int) -> Any:
    value = await probe
    return value if value and len(value["items"]) >= n else None


async def _first(receiver: Receiver, hook: str) -> Any:
    return next((h for h in receiver.received if h.hook == hook), None)


async def _count(receiver: Receiver, hook: str, n: int) -> Any:
    ids = [h.webhook_id for h in receiver.received if h.hook == hook]
    return ids if len(ids) >= n else None


async def test_owners_are_upserted_in_the_unit_of_work(database_url: str) -> None:
    """``LeadOwners.put_many``: a lead's owner is inserted, then replaced on reassignment, in
    the unit of work's transaction."""
    from router.adapters.repository import RouterUnitOfWork
    from router.domain import CurrentOwner

    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    lead = {"email": "zoë@northwind.example", "company": 'Northwind "NW"'}
    first = CurrentOwner("lead-1", uuid.uuid4(), "rep-ana", None, "team-a", "mql", lead)
    other = CurrentOwner("lead-2", uuid.uuid4(), None, "sdr-queue", None, "mql", {})
    moved = CurrentOwner(
        "lead-1", uuid.uuid4(), "rep-bo", None, "team-b", "sql", {**lead, "title": "CTO"}
    )
    try:
        async with RouterUnitOfWork(engine) as uow:
            await uow.owners.put_many([first, other], T0)  # and no commit: rolled back
        async with RouterUnitOfWork(engine) as uow:
            assert await uow.owners.get_many(["lead-1", "lead-2"]) == {}
            await uow.owners.put_many([first, other], T0)
            await uow.commit()
        async with RouterUnitOfWork(engine) as uow:
            await uow.owners.put_many([moved], T0)
            await uow.commit()
        async with RouterUnitOfWork(engine) as uow:
            assert await uow.owners.get_many(["lead-1", "lead-2"]) == {
                "lead-1": moved,
                "lead-2": other,
            }
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.min(orm.lead_owners.c.assigned_at))) == T0
    finally:
        await engine.dispose()


async def test_pool_pointers_are_made_once_and_locked_until_commit(database_url: str) -> None:
    """``RoundRobinState.lock_many``: a pool seen for the first time gets a pointer at 0; one
    seen before is locked by a single statement; a lock is held until the transaction ends, so
    a second instance reads the position the first one left."""
    from router.adapters.repository import RouterUnitOfWork

    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    a, b, c = (f"pool-{n}-{uuid.uuid4().hex[:6]}" for n in "abc")
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with RouterUnitOfWork(engine) as uow:
            assert await uow.pointers.lock_many([b, a, a]) == {a: 0, b: 0}
            await uow.pointers.set_many({a: 3}, T0)
            await uow.commit()
        async with RouterUnitOfWork(engine) as uow:
            del statements[:]
            assert await uow.pointers.lock_many([a, b]) == {a: 3, b: 0}
            assert len(statements) == 1  # the pools have pointers: one statement
            assert await uow.pointers.lock_many([c]) == {c: 0}
            other = asyncio.create_task(_locked(engine, a))
            await asyncio.sleep(0.3)
            assert not other.done()  # waits for this transaction
            await uow.pointers.set_many({a: 4}, T0)
            await uow.commit()
        assert await asyncio.wait_for(other, 10) == {a: 4}
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", seen)
        await engine.dispose()


async def _locked(engine: Any, pool: str) -> dict[str, int]:
    from router.adapters.repository import RouterUnitOfWork

    async with RouterUnitOfWork(engine) as uow:
        return await uow.pointers.lock_many([pool])
