"""The five services as real processes: form fill → signed webhook → SLA alert (or none), and
the funnel analytics draws from it."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest

from devstack.receiver import Receiver
from devstack.stack import Stack
from tests.e2e.stack import fill_form, rules_files, started
from tests.infra import Infra

pytestmark = pytest.mark.e2e

SLA_SECONDS = 4.0


@dataclass
class Running:
    stack: Stack
    receiver: Receiver
    intake: httpx.AsyncClient


@pytest.fixture(scope="module")
async def running(
    infra: Infra, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    workdir = tmp_path_factory.mktemp("e2e")
    env = rules_files(workdir, receiver.port, ("rep-a", "rep-b"), SLA_SECONDS) | {
        "ROUTER_WEBHOOK_SCHEDULE_S": "0.2,0.5,1",
        "SLA_WEBHOOK_SCHEDULE_S": "0.2,0.5,1",
        "INTAKE_RATE_LIMIT": "5000/second",  # the funnel test posts thousands of events
    }
    services = ("intake", "scoring", "router", "sla-monitor", "analytics")
    async with started(infra, workdir, env, services) as (stack, _):
        key = await asyncio.to_thread(stack.api_key, "e2e")
        client = httpx.AsyncClient(
            base_url=stack.url("intake"), timeout=10, headers={"Authorization": f"Bearer {key}"}
        )
        yield Running(stack, receiver, client)
        await client.aclose()


async def submit(running: Running) -> str:
    return (await fill_form(running.intake))[1]


async def test_form_fill_arrives_as_a_verified_webhook(running: Running) -> None:
    lead_id = await submit(running)
    hooks = await running.receiver.wait_for("crm", lead_id, 30)
    assert len(hooks) == 1, "expected the routed lead at the receiver"
    hook = hooks[0]
    assert hook.webhook_id.startswith("msg_")
    data = hook.payload["data"]
    assert hook.payload["type"] == "lead.assigned" and data["owner"]["id"] in {"rep-a", "rep-b"}
    assert "fast lane" in data["summary"] and "round robin" in data["summary"]
    assert running.receiver.rejected == []  # every request verified by standardwebhooks
    async with httpx.AsyncClient(
        base_url=running.stack.url("router"),
        headers={"Authorization": f"Bearer {running.stack.admin_token('router')}"},
    ) as router:
        record = (await router.get(f"/v1/assignments/{data['assignment_id']}")).json()
    assert record["decision"]["strategy"] == "round_robin"
    # The lead's one timeline tells the whole way: scored, qualified, and who it went to.
    async with httpx.AsyncClient(
        base_url=running.stack.url("scoring"),
        headers={"Authorization": f"Bearer {running.stack.admin_token('scoring')}"},
    ) as scoring:
        for _ in range(100):
            entries = (await scoring.get(f"/v1/leads/{lead_id}/timeline")).json()["entries"]
            if any(e["kind"] == "assigned" for e in entries):
                break
            await asyncio.sleep(0.1)
    kinds = [e["kind"] for e in entries]
    assert kinds[:2] == ["form_submitted", "scored"] and "stage_changed" in kinds, kinds
    handoff = next(e for e in entries if e["kind"] == "assigned")
    assert handoff["detail"]["owner_id"] == data["owner"]["id"], entries
    assert handoff["summary"].endswith(data["summary"])


async def test_the_funnel_counts_a_lead_from_its_form_to_its_owner(running: Running) -> None:
    source = f"e2e-{uuid.uuid4().hex[:8]}"
    _, lead_id = await fill_form(running.intake, source)
    routed = await running.receiver.wait_for("crm", lead_id, 30)
    owner = routed[0].payload["data"]["owner"]["id"]
    async with httpx.AsyncClient(
        base_url=running.stack.url("analytics"),
        headers={"Authorization": f"Bearer {running.stack.admin_token('analytics')}"},
    ) as analytics:
        for _ in range(100):
            body = (await analytics.get("/v1/waterfall", params={"source": source})).json()
            stages = {s["stage"]: s for g in body["groups"] for s in g["stages"]}
            by_rep = await analytics.get("/v1/waterfall", params={"source": source, "rep": owner})
            if stages and stages["mql"]["entered"] == 1 and by_rep.json()["groups"]:
                break
            await asyncio.sleep(0.2)
    assert (stages["inquiry"]["entered"], stages["mql"]["entered"]) == (1, 1), stages
    assert stages["inquiry"]["reached_next"] == 1 and stages["mql"]["balance"] == 1


async def test_activity_before_the_deadline_means_no_alert(running: Running) -> None:
    lead_id = await submit(running)
    routed = await running.receiver.wait_for("crm", lead_id, 30)
    assert routed
    owner = routed[0].payload["data"]["owner"]["id"]  # only the owner's touch counts
    resp = await running.intake.post(
        "/v1/activities", json={"lead_id": lead_id, "activity_type": "call", "actor_id": owner}
    )
    assert resp.status_code == 202
    await asyncio.sleep(SLA_SECONDS + 2.5)
    assert running.receiver.of("ops", lead_id) == []


async def test_no_activity_means_exactly_one_alert_after_the_deadline(running: Running) -> None:
    lead_id = await submit(running)
    routed = await running.receiver.wait_for("crm", lead_id, 30)
    assert routed
    async with httpx.AsyncClient(
        base_url=running.stack.url("sla-monitor"),
        headers={"Authorization": f"Bearer {running.stack.admin_token('sla-monitor')}"},
    ) as sla:
        for _ in range(50):
            clocks = (await sla.get("/v1/sla/open", params={"lead_id": lead_id})).json()["items"]
            if clocks:
                break
            await asyncio.sleep(0.1)
    assert clocks, "the SLA clock should have started"
    due_at = datetime.fromisoformat(clocks[0]["due_at"]).timestamp()
    await asyncio.sleep(max(0.0, due_at - time.time() - 1.0))
    assert running.receiver.of("ops", lead_id) == [], "alerted before the deadline"
    alerts = await running.receiver.wait_for("ops", lead_id, 15)
    assert alerts and alerts[0].at >= due_at
    await asyncio.sleep(2.0)
    alerts = running.receiver.of("ops", lead_id)
    assert len(alerts) == 1
    assert alerts[0].payload["type"] == "sla.breached"
    assert alerts[0].payload["data"]["owner_id"] == routed[0].payload["data"]["owner"]["id"]


@dataclass
class Plan:
    """What a seeded generator makes of each lead, and so what the funnel must count."""

    forms: list[dict[str, object]]
    feedback: dict[int, list[dict[str, object]]]  # by the form's place, in order
    entered: dict[str, int]
    reached: dict[str, int]
    balance: dict[str, int]


def plan(leads: int, source: str, seed: int = 29) -> Plan:
    """Buyers (a senior title at a company: the form's fast lane makes them MQLs) and students
    (free mail, no company: inquiries only); sales accepts most MQLs and rejects the others (for
    no budget: recycled; as not a fit: disqualified), converts some of the accepted with an
    opportunity, and wins or loses each; the rates are the draws below."""
    rnd = random.Random(seed)
    forms: list[dict[str, object]] = []
    feedback: dict[int, list[dict[str, object]]] = {}
    n = dict.fromkeys(
        ("inquiry", "mql", "sal", "sql", "opportunity", "won", "lost", "recycled", "disqualified"),
        0,
    )
    for i in range(leads):
        buyer = rnd.random() < 0.6
        tag = f"{source}-{i}"
        form: dict[str, object] = (
            {"email": f"{tag}@contoso.example", "company": "Contoso", "title": "VP Sales"}
            if buyer
            else {"email": f"{tag}@gmail.com", "title": "Student"}
        )
        forms.append(form | {"utm": {"utm_source": source}})
        n["inquiry"] += 1
        if not buyer:
            continue
        n["mql"] += 1
        said: list[dict[str, object]] = []
        if rnd.random() < 0.7:
            said.append({"feedback": "accepted", "actor_id": "rep-a"})
            n["sal"] += 1
            if rnd.random() < 0.5:
                opportunity = f"opp-{tag}"
                said.append({"feedback": "converted", "opportunity_id": opportunity})
                n["sql"] += 1
                n["opportunity"] += 1
                if rnd.random() < 0.4:
                    said.append(
                        {
                            "feedback": "won",
                            "opportunity_id": opportunity,
                            "amount": 10000,
                            "currency": "EUR",
                        }
                    )
                    n["won"] += 1
                else:
                    said.append({"feedback": "lost", "opportunity_id": opportunity})
                    n["lost"] += 1
        else:
            reason = rnd.choice(["no_budget", "not_a_fit"])
            said.append({"feedback": "rejected", "reason_code": reason})
            n["recycled" if reason == "no_budget" else "disqualified"] += 1
        feedback[i] = said
    reached = {
        "inquiry": n["mql"],
        "mql": n["sal"],
        "sal": n["sql"],
        "sql": n["opportunity"],
        "opportunity": n["won"],
    }
    balance = dict(n) | {
        "inquiry": n["inquiry"] - n["mql"],
        "mql": 0,
        "sal": n["sal"] - n["sql"],
        "sql": 0,
        "opportunity": 0,
    }
    return Plan(forms, feedback, n, reached, balance)


async def test_thousands_of_leads_through_the_pipeline_make_the_planned_funnel(
    running: Running,
) -> None:
    """Every lead is posted to intake as a form, then sales' word on it, and goes through
    scoring, router and sla-monitor to analytics: the waterfall equals what the generator
    planned, exactly."""
    source = f"funnel-{uuid.uuid4().hex[:8]}"
    planned = plan(2_000, source)
    gate = asyncio.Semaphore(32)

    async def post(path: str, body: dict[str, object]) -> dict[str, object]:
        for _ in range(50):
            resp = await running.intake.post(path, json=body)
            if resp.status_code != 429:
                break
            await asyncio.sleep(float(resp.headers.get("retry-after", "0.2")))
        assert resp.status_code == 202, resp.text
        answer: dict[str, object] = resp.json()
        return answer

    async def lead(i: int) -> None:
        async with gate:  # one lead's events in order: one after the other
            lead_id = (await post("/v1/forms", planned.forms[i]))["lead_id"]
            for said in planned.feedback.get(i, []):
                await post(f"/v1/leads/{lead_id}/feedback", said)

    await asyncio.gather(*(lead(i) for i in range(len(planned.forms))))

    async with httpx.AsyncClient(
        base_url=running.stack.url("analytics"),
        headers={"Authorization": f"Bearer {running.stack.admin_token('analytics')}"},
        timeout=30,
    ) as analytics:
        stages: dict[str, dict[str, object]] = {}
        for _ in range(300):
            body = (await analytics.get("/v1/waterfall", params={"source": source})).json()
            stages = {s["stage"]: s for g in body["groups"] for s in g["stages"]}
            if stages and all(stages[k]["entered"] == v for k, v in planned.entered.items()):
                if all(stages[k]["balance"] == v for k, v in planned.balance.items()):
                    break
            await asyncio.sleep(0.5)
    assert {k: stages[k]["entered"] for k in planned.entered} == planned.entered
    assert {k: stages[k]["balance"] for k in planned.balance} == planned.balance
    assert {k: stages[k]["reached_next"] for k in planned.reached} == planned.reached
