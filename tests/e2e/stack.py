"""The services as real processes on a database of their own, for one test module."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from devstack.stack import Stack
from leadrelay_shared.kafka import ensure_topics, start_group_at_end
from scoring.settings import timeline_group
from tests.infra import Infra, create_database, drop_database

CRM_SECRET = "whsec_ZTJlLWNybS1zZWNyZXQtZm9yLXRlc3Rz"
OPS_SECRET = "whsec_ZTJlLW9wcy1zZWNyZXQtZm9yLXRlc3Rz"
"""The secrets of the sales system (``crm``) and the ops channel (``ops``) in every module's
routing and SLA files."""


def rules_files(
    workdir: Path, receiver_port: int, reps: tuple[str, ...], sla_seconds: float
) -> dict[str, str]:
    """A routing file with one round-robin pool of ``reps`` for MQLs, whose webhooks go to the
    receiver's ``crm``, and an SLA file whose one policy breaches ``sla_seconds`` after a
    handoff, alerting the receiver's ``ops``; as the settings that name them."""
    hooks = f"http://127.0.0.1:{receiver_port}/hooks"
    routing = workdir / "routing.yaml"
    routing.write_text(f"""version: {workdir.name}
reps: [{", ".join(f"{{id: {r}, name: {r}}}" for r in reps)}]
teams:
  - {{id: sdr, name: SDR, stages: [mql], members: [{", ".join(reps)}],
     respect_working_hours: false}}
webhooks:
  - {{id: crm, url: "{hooks}/crm", secret: "{CRM_SECRET}"}}
""")
    policies = workdir / "sla.yaml"
    policies.write_text(f"""version: {workdir.name}
calendars: [{{id: always, always: true}}]
policies: [{{id: first-touch, calendar: always, first_touch: {sla_seconds}s, warning_at: null}}]
channels:
  - {{id: ops, type: webhook, url: "{hooks}/ops", secret: "{OPS_SECRET}"}}
""")
    return {"ROUTER_CONFIG_PATH": str(routing), "SLA_POLICIES_PATH": str(policies)}


@asynccontextmanager
async def started(
    infra: Infra, workdir: Path, env: dict[str, str], only: tuple[str, ...] | None = None
) -> AsyncIterator[tuple[Stack, str]]:
    """Every service (or ``only`` those) with ``env``, consumer groups of their own reading
    from now on; yields the stack and its database URL. The services' output goes to
    ``services.log``, printed when they fail to start."""
    name, url = await create_database(infra)
    suffix = uuid.uuid4().hex[:6]
    groups = {
        f"{prefix}_CONSUMER_GROUP": f"e2e-{prefix.lower()}-{suffix}"
        for prefix in ("SCORING", "ROUTER", "SLA", "ANALYTICS")
    }
    # the groups read from the topics' ends: the stack handles this module's events only, not
    # the history other tests left in the shared Kafka
    await ensure_topics(infra.bootstrap)
    for group in (*groups.values(), timeline_group(groups["SCORING_CONSUMER_GROUP"])):
        await start_group_at_end(infra.bootstrap, group)
    stack = Stack(
        data_dir=workdir,
        pick_free_ports=True,
        log_file=workdir / "services.log",
        bootstrap=infra.bootstrap,
        database_url=url,
        extra_env=groups | env,
    )
    try:
        await asyncio.to_thread(stack.start_services, only)
        await asyncio.to_thread(stack.wait_ready)
    except BaseException:
        stack.stop()
        print((workdir / "services.log").read_text()[-5000:])
        await drop_database(infra, name)
        raise
    try:
        yield stack, url
    finally:
        await asyncio.to_thread(stack.stop)
        await drop_database(infra, name)


async def fill_form(intake: httpx.AsyncClient, source: str | None = None) -> tuple[str, str]:
    """A new person's form fill (a senior buyer: an MQL at once), with ``source`` as its
    utm_source; its email and lead id."""
    email = f"e2e-{uuid.uuid4().hex[:8]}@contoso.example"
    form: dict[str, object] = {
        "email": email,
        "first_name": "Grace",
        "company": "Contoso",
        "title": "VP Sales",
    }
    if source is not None:
        form["utm"] = {"utm_source": source}
    resp = await intake.post("/v1/forms", json=form)
    assert resp.status_code == 202, resp.text
    return email, str(resp.json()["lead_id"])
