"""``make demo``: posts realistic leads to a running stack and shows what comes out of it."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from analytics.settings import AnalyticsSettings
from router.config import load
from router.settings import RouterSettings
from sla_monitor.config import load as load_policies

from .receiver import Received, Receiver
from .stack import ROOT

LEADS: list[dict[str, Any]] = [
    {
        "email": "ada.lovelace@northwind.example",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "company": "Northwind Traders",
        "title": "VP Engineering",
        "country": "GB",
        "company_size": 250,
        "industry": "Software",
        "page_url": "https://leadrelay.dev/demo",
        "utm": {"utm_source": "google", "utm_campaign": "q4-demo"},
    },
    {
        "email": "grace@contoso.example",
        "first_name": "Grace",
        "last_name": "Hopper",
        "company": "Contoso",
        "title": "Director of IT",
        "country": "US",
        "company_size": 1200,
    },
    {
        "email": "linus@initech.example",
        "first_name": "Linus",
        "company": "Initech",
        "title": "Head of Data",
        "country": "DE",
        "company_size": 80,
    },
    {"email": "someone@gmail.com", "first_name": "Sam", "title": "Student", "country": "FR"},
    {
        "email": "katherine@globex.example",
        "first_name": "Katherine",
        "company": "Globex",
        "country": "US",
    },
]


def people(tag: str) -> list[dict[str, Any]]:
    """The demo's leads, their addresses tagged for this run (``ada.lovelace+tag@…``): each run
    posts new people, so a second ``make demo`` on the same data routes them as the first did
    (the same addresses again would be leads already handed off). Domains stay, so account
    matching and the free-mail check see what they would."""
    return [{**lead, "email": lead["email"].replace("@", f"+{tag}@")} for lead in LEADS]


def show(item: Received) -> None:
    data = item.payload.get("data", {})
    if item.hook in ("slack", "pagerduty"):
        return  # the same alerts as ops, in another format
    if item.hook == "crm":
        owner = data.get("owner", {})
        print(
            f"  ← webhook {item.webhook_id[:16]}…  lead {data.get('lead_id', '')[:8]} "
            f"→ {owner.get('name')} ({data.get('team_id')})\n      why: {data.get('summary')}"
        )
    else:
        print(
            f"  ⚠ {item.payload.get('type')} {item.webhook_id[:16]}…  lead "
            f"{data.get('lead_id', '')[:8]} owner {data.get('owner_id')}\n"
            f"      why: {data.get('summary')}"
        )


def receiver_secrets(routing_path: Path, policies_path: Path) -> dict[str, str]:
    """The signing secret of each endpoint the demo receiver stands in for: router's CRM
    webhook and sla-monitor's alert channels."""
    routing = load(routing_path)
    policies = load_policies(policies_path)
    return {
        "crm": next(iter(routing.endpoints().values())).secret,
        **{c.endpoint.id: c.endpoint.secret for c in policies.channels.values()},
    }


async def run(intake_url: str, receiver_port: int, wait_s: float) -> int:
    secrets = receiver_secrets(
        RouterSettings().config_path,
        Path(os.environ.get("SLA_POLICIES_PATH", ROOT / "deploy" / "config" / "sla-demo.yaml")),
    )
    receiver = Receiver(secrets=secrets, port=receiver_port, on_receive=show)
    receiver.start()
    print(
        f"demo receiver listening on http://127.0.0.1:{receiver_port}/hooks/{{{','.join(secrets)}}}"
    )
    lead_ids = []
    async with httpx.AsyncClient(
        base_url=intake_url, timeout=10, headers={"Authorization": f"Bearer {api_key()}"}
    ) as client:
        for lead in people(uuid.uuid4().hex[:6]):
            resp = await client.post("/v1/forms", json=lead)
            body = resp.json()
            print(
                f"→ POST /v1/forms {lead['email']:<41} {resp.status_code} "
                f"lead {body.get('lead_id', '')[:8]}"
            )
            lead_ids.append(body.get("lead_id"))
        first = await receiver.wait_for("crm", lead_ids[0], 30)
        if first:
            resp = await client.post(
                "/v1/activities",
                json={
                    "lead_id": lead_ids[0],
                    "activity_type": "call",
                    "actor_id": first[0].payload["data"]["owner"]["id"],
                    "subject": "Intro call",
                },
            )
            print(
                f"→ POST /v1/activities call for lead {lead_ids[0][:8]}: {resp.status_code} "
                "(its SLA clock stops: no alert for it)"
            )
    print(f"waiting up to {wait_s:.0f}s for SLA alerts on the unworked leads…")
    deadline = time.monotonic() + wait_s
    ours = {lead for lead in lead_ids if lead}
    while time.monotonic() < deadline and not alerted(receiver, ours):
        await asyncio.sleep(0.5)
    receiver.stop()
    routed, alerts = _of(receiver, "crm", ours), _of(receiver, "ops", ours)
    print(
        f"\n{len(routed)} leads routed, {len(alerts)} SLA alerts "
        f"({len(_breaches(receiver, ours))} breaches), "
        f"{len(receiver.rejected)} bad signatures."
    )
    await show_funnel()
    return 0 if routed else 1


async def show_funnel() -> None:
    """The last day's funnel as analytics counts it, every demo run so far included."""
    url = os.environ.get("ANALYTICS_URL", "http://127.0.0.1:8004")
    token = os.environ.get("ANALYTICS_ADMIN_TOKEN") or (
        AnalyticsSettings().admin_token.get_secret_value()
    )
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    try:
        async with httpx.AsyncClient(
            base_url=url, timeout=5, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            waterfall = (await client.get("/v1/waterfall", params={"since": since})).json()
            leakage = (await client.get("/v1/leakage", params={"since": since})).json()
    except (httpx.HTTPError, ValueError):
        return  # analytics is not running here
    stages = {s["stage"]: s["entered"] for g in waterfall["groups"] for s in g["stages"]}
    print(
        "funnel of the last day (analytics, "
        f"{url}/v1/waterfall): "
        + " → ".join(f"{stages.get(s, 0)} {s}" for s in ("inquiry", "mql", "sal"))
        + f"; {leakage['untouched_before_breach']['count']} handed off and never touched "
        "before the SLA breached"
    )


def alerted(receiver: Receiver, leads: set[str]) -> bool:
    """Every routed lead of this run but the one the demo worked has breached (at least one has:
    leads routed later than the first are still on their way when the wait starts). Alerts
    about leads of earlier runs, still unworked, do not count."""
    breaches = len(_breaches(receiver, leads))
    return breaches >= 1 and breaches >= len(_of(receiver, "crm", leads)) - 1


def _of(receiver: Receiver, hook: str, leads: set[str]) -> list[Received]:
    return [r for r in receiver.of(hook) if r.payload.get("data", {}).get("lead_id") in leads]


def _breaches(receiver: Receiver, leads: set[str]) -> list[Received]:
    return [r for r in _of(receiver, "ops", leads) if r.payload.get("type") == "sla.breached"]


def api_key() -> str:
    """``LEADRELAY_API_KEY``, or the development key ``make run`` wrote."""
    if key := os.environ.get("LEADRELAY_API_KEY"):
        return key
    path = Path(os.environ.get("LEADRELAY_DATA_DIR", ROOT / ".data")) / "dev-api-key"
    if not path.exists():
        raise SystemExit(
            f"no API key: start the stack with `make run` (it writes {path}) or "
            "set LEADRELAY_API_KEY"
        )
    return path.read_text().strip()


def main() -> int:
    intake_url = os.environ.get("INTAKE_URL", "http://127.0.0.1:8000")
    wait_s = float(os.environ.get("DEMO_WAIT_S", "60"))
    return asyncio.run(run(intake_url, int(os.environ.get("DEMO_RECEIVER_PORT", "8099")), wait_s))
