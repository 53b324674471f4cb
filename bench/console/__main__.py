"""``python -m bench.console``: every console page, with 1,000,000 leads stored.

Figure, per page: p95 of the page's answer, signed in, through the console and the services'
APIs it calls, all as real processes (target ≤ 300 ms each).

The services' tables are written straight into PostgreSQL by ``generate_series`` before they
start: a year of leads up to now (scoring's profiles, timelines and stage history; one in ten
an MQL, routed by router with its decision and webhook, on an SLA clock at sla-monitor, one in
ten of those breached and alerted), and analytics' read model of the same leads with ten facts
each. A few deliveries are dead or failing. It runs on the PostgreSQL and Kafka it starts (or on
``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``), in a scratch database it removes afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from bench.analytics import readmodel
from bench.common import (
    Figure,
    Report,
    machine,
    percentile,
    remove_scratch,
    scratch_database,
    scratch_dir,
)
from devstack.stack import Stack
from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade

SCHEMAS = {"scoring": "scoring", "router": "router", "sla_monitor": "sla", "console": "console"}
SERVICES = ("scoring", "router", "sla-monitor", "analytics", "console")
PAGES = ("/funnel", "/sla", "/reports", "/leads/{lead}", "/routing", "/scoring", "/deliveries")

# Lead i is 'b' || i, as in analytics' read model; lead i is an MQL when i % 10 = 0.
FILL = [
    """
    INSERT INTO scoring.leads (lead_id, snapshot, stage, stage_entered_at, fit_score,
        engagement_score, form_fills, model_version, fit_grade, snapshot_at, cycle, created_at,
        updated_at)
    SELECT 'b' || i,
           jsonb_build_object('email', 'p' || i || '@example' || (i % 300) || '.com',
                              'company', 'Company ' || (i % 5000), 'country', 'FR'),
           CASE WHEN i % 10 = 0 THEN 'mql' ELSE 'inquiry' END, t, 40 + i % 50, i % 60, 1,
           'bench', 'B', t, 1, t, t
    FROM generate_series(1, :leads) AS i,
         LATERAL (SELECT CAST(:start AS timestamptz) + i * CAST(:step AS interval) AS t) AS at
    """,
    """
    INSERT INTO scoring.stage_history (lead_id, cycle, from_stage, to_stage, actor, reasons, at,
                                       model_version)
    SELECT lead_id, 1, NULL, 'inquiry', 'marketing',
           CAST('[{"rule_id": "first", "message": "first known contact"}]' AS jsonb), created_at,
           'bench'
    FROM scoring.leads
    UNION ALL
    SELECT lead_id, 1, 'inquiry', 'mql', 'marketing',
           CAST('[{"rule_id": "mql", "message": "fit and engagement over the bar"}]' AS jsonb),
           created_at, 'bench'
    FROM scoring.leads WHERE stage = 'mql'
    """,
    """
    INSERT INTO scoring.timeline (lead_id, at, kind, summary, detail)
    SELECT lead_id, created_at + k * interval '1 second', kind, kind || ' (bench)', '{}'
    FROM scoring.leads,
         unnest(ARRAY['form_submitted', 'scored', 'stage_changed']) WITH ORDINALITY AS x(kind, k)
    """,
    """
    INSERT INTO router.assignments (id, lead_id, stage, owner_id, team_id, strategy, decision,
        config_version, cause_event_id, created_at, kind, lead)
    SELECT md5('a' || lead_id)::uuid, lead_id, 'mql', 'rep-' || (length(lead_id) % 3), 'sdr',
           'round_robin',
           jsonb_build_object('summary', 'next in round robin', 'strategy', 'round_robin',
                              'candidates', jsonb_build_array('rep-0', 'rep-1', 'rep-2'),
                              'skipped', CAST('[]' AS jsonb), 'reasons', CAST('[]' AS jsonb),
                              'pointer_before', 0, 'pointer_after', 1),
           'bench', md5('c' || lead_id)::uuid, created_at + interval '1 second', 'assign',
           snapshot
    FROM scoring.leads WHERE stage = 'mql'
    """,
    """
    INSERT INTO router.webhook_deliveries (id, endpoint_id, url, event_type, lead_id, payload,
        status, attempts, next_attempt_at, last_status_code, created_at, delivered_at)
    SELECT 'msg_' || md5('w' || lead_id), 'crm', 'http://127.0.0.1:9/hook', 'lead.assigned',
           lead_id, '{}', 'delivered', 1, created_at, 200, created_at, created_at
    FROM router.assignments
    """,
    """
    INSERT INTO sla.clocks (id, lead_id, assignment_id, stage, phase, owner_id, team_id,
        policy_id, policy_version, zone, status, started_at, deadline_s, due_at, due_text,
        breached_at, ended_at, outcome)
    SELECT md5('k' || lead_id)::uuid, lead_id, id, 'mql', 0, owner_id, team_id, 'first-touch',
           'bench', 'UTC', 'worked', created_at, 3600, created_at + interval '1 hour',
           'one working hour',
           CASE WHEN hashtext(lead_id) % 10 = 0 THEN created_at + interval '1 hour' END,
           created_at + interval '2 hours',
           CASE WHEN hashtext(lead_id) % 10 = 0 THEN 'breached' ELSE 'worked' END
    FROM router.assignments
    """,
    """
    INSERT INTO sla.alerts (id, clock_id, lead_id, level, policy_id, team_id, owner_id,
        scheduled_at, fired_at, summary, reasons)
    SELECT md5('l' || lead_id)::uuid, id, lead_id, 'breach', policy_id, team_id, owner_id,
           breached_at, breached_at, 'first-touch SLA breached (bench)', '[]'
    FROM sla.clocks WHERE breached_at IS NOT NULL
    """,
    # what the pages are about: deliveries that died or keep failing, clocks still open
    """
    UPDATE router.webhook_deliveries SET status = CASE WHEN n % 2 = 0 THEN 'dead' ELSE 'pending'
           END, attempts = 5, last_status_code = 500, delivered_at = NULL,
           next_attempt_at = now() + interval '1 day'
    FROM (SELECT id AS dead_id, row_number() OVER (ORDER BY created_at DESC) AS n
          FROM router.webhook_deliveries ORDER BY created_at DESC LIMIT 40) AS latest
    WHERE id = dead_id
    """,
    """
    UPDATE sla.clocks SET status = 'open', ended_at = NULL, outcome = NULL,
           due_at = now() + interval '10 minutes'
    WHERE id IN (SELECT id FROM sla.clocks ORDER BY started_at DESC LIMIT 30)
    """,
]


async def fill(url: str, leads: int, events: int) -> None:
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            params = {"leads": leads, "start": start, "step": timedelta(days=365) / leads}
            await conn.execute(sa.text(FILL[0]), params)
            for sql in FILL[1:]:
                await conn.execute(sa.text(sql))
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()
    await readmodel.fill(url, leads, events, start)


def signed_in(url: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text
    resp = client.post(
        "/login", data={"username": "admin", "password": password, "csrf_token": token[1]}
    )
    assert resp.status_code == 303, resp.text
    return client


def timed(client: httpx.Client, path: str, n: int) -> list[float]:
    """Milliseconds per answer; a page that fails counts as infinitely slow."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        resp = client.get(path)
        ok = resp.status_code == 200
        out.append((time.perf_counter() - started) * 1000 if ok else float("inf"))
        if not ok:
            print(f"{path}: {resp.status_code}", flush=True)
    return out


def bench_pages(stack: Stack, leads: int, events: int, requests: int) -> dict[str, list[float]]:
    async def prepare() -> None:
        async with scratch_database(stack.database_url, "bench_console") as url:
            for package, schema in SCHEMAS.items():
                await asyncio.to_thread(upgrade, package, url, schema)
            await asyncio.to_thread(upgrade, "analytics", url, "analytics")
            await fill(url, leads, events)
            stack.database_url = url
            await asyncio.to_thread(run)

    timings: dict[str, list[float]] = {}

    def run() -> None:
        stack.start_services(SERVICES)
        try:
            stack.wait_ready(timeout_s=300)
            client = signed_in(stack.url("console"), stack.console_account())
            lead = f"b{(leads // 20) * 10}"
            try:
                for page in PAGES:
                    path = page.format(lead=lead)
                    timed(client, path, 2)
                    timings[page] = timed(client, path, requests)
            finally:
                client.close()
        finally:
            for name in SERVICES:
                stack.stop_service(name)

    base = stack.database_url
    try:
        asyncio.run(prepare())
    finally:
        stack.database_url = base
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.console")
    parser.add_argument("--smoke", action="store_true", help="one short run: proves the harness")
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    leads, events, requests = (
        (2_000, 20_000, 3) if args.smoke else (args.leads, args.events, args.requests)
    )
    report = Report("console: every page with a year of leads stored")
    figures = {
        page: report.add(
            Figure(
                f"{page} page, {leads:,} leads",
                "ms p95",
                [],
                target=300,
                higher_is_better=False,
                note=f"{requests} requests, signed in, one at a time",
            )
        )
        for page in PAGES
    }
    work = scratch_dir("bench-console-")
    stack = Stack(data_dir=work, durable=False, pick_free_ports=True, log_file=work / "svc.log")
    try:
        stack.start_infra()
        timings = bench_pages(stack, leads, events, requests)
        for page, values in timings.items():
            figures[page].runs.append(percentile(values, 95))
            report.context[f"{page}_p50_ms"] = round(percentile(values, 50), 1)
    finally:
        stack.stop()
        remove_scratch(work)
    report.context.update(leads=leads, events=events, cores=machine()["cores"])
    report.finish("console", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
