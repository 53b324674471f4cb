"""``python -m bench.analytics``: analytics' consumer, and its reports over a large read model.

Figures:

* events per second through analytics' consumer with PostgreSQL: a seeded history of every
  event type, Kafka poll, decode, facts and lead rows written, offsets committed
  (target ≥ 5,000/s);
* the waterfall by month and source over 1,000,000 leads and 10,000,000 events, p99 of the
  API's answer (target ≤ 200 ms);
* the planner (the issue's example request), p99 of the API's answer (target ≤ 100 ms).

The read model for the last two is written straight into PostgreSQL by ``generate_series``:
a year of leads, one in ten an MQL and on down the waterfall, their touches, assignments and
feedback, as the consumer would have written them. It runs on the PostgreSQL and Kafka it
starts (or on ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``), in scratch databases and topics
it removes afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from analytics import handlers
from analytics.adapters import orm
from analytics.adapters.repository import AnalyticsUnitOfWork
from analytics.bootstrap import create_app
from analytics.schemas import PLAN_EXAMPLE
from analytics.settings import AnalyticsSettings
from bench.analytics import histories
from bench.common import (
    Figure,
    Report,
    drive_consumer,
    machine,
    percentile,
    remove_scratch,
    scratch_database,
    scratch_dir,
)
from devstack.stack import Stack
from leadrelay_shared.codec import encode
from leadrelay_shared.contracts import Event
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import ensure_topics, make_producer
from leadrelay_shared.migrate import upgrade

START = datetime(2025, 11, 1, tzinfo=UTC)
TOKEN = "bench-analytics-admin"


class NoRelay:
    """analytics sends nothing: the consumer harness's relay does nothing until stopped."""

    def __init__(self) -> None:
        self._stopped = asyncio.Event()

    def wake(self) -> None:
        """Nothing is queued, so nothing to wake."""

    async def run(self) -> None:
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()


async def bench_consumer(stack: Stack, leads: int) -> tuple[float, int]:
    people = histories.leads(leads, START, timedelta(days=300), seed=3)
    events: list[Event] = list(histories.history(people, seed=3))
    topic = f"leadrelay.bench.analytics.{uuid.uuid4().hex[:8]}"
    async with scratch_database(stack.database_url, "bench_analytics") as url:
        await asyncio.to_thread(upgrade, "analytics", url, orm.SCHEMA)
        await ensure_topics(stack.bootstrap, {topic: 6})
        producer = make_producer(stack.bootstrap, client_id="bench-analytics", send_timeout_s=30)
        await producer.start()
        engine = make_engine(url)
        try:
            futures = []
            for e in events:
                r = encode(e)
                futures.append(
                    await producer.send(topic, value=r.value, key=r.key, headers=r.headers)
                )
            await asyncio.gather(*futures)

            async def record(batch: Sequence[Event]) -> None:
                await handlers.record(batch, uow=AnalyticsUnitOfWork(engine))

            elapsed = await drive_consumer(
                stack.bootstrap, topic, producer, len(events), record, NoRelay()
            )
        finally:
            await producer.stop()
            await engine.dispose()
    return len(events) / elapsed, len(events)


# A year of leads written as the consumer would: ids and times from the row number, choices by
# multiplicative hashing, so every run writes the same read model.
FILL = [
    """
    INSERT INTO analytics.leads (lead_id, first_at, origin, source, campaign, owner_id, team_id,
                                 territory, segment, assigned_at, stage, stage_at, stage_order)
    SELECT 'b' || i, CAST(:start AS timestamptz) + (i * interval '31.5 seconds'),
           CASE WHEN i % 9 = 0 THEN 'sales' ELSE 'marketing' END,
           'source-' || (i::bigint * 2654435761 % 8), 'campaign-' || (i::bigint * 40503 % 20),
           'rep-' || (i * 97 % 30), 'team-' || (i * 97 % 30 / 10), 'territory-' || (i % 4),
           (ARRAY['smb', 'mid', 'enterprise'])[1 + i % 3],
           CAST(:start AS timestamptz) + (i * interval '31.5 seconds') + interval '2 days',
           'inquiry', CAST(:start AS timestamptz) + (i * interval '31.5 seconds'), 0
    FROM generate_series(1, :leads) AS i
    """,
    # the waterfall: inquiry for all, then each step for a share, a fixed delay after the last
    """
    INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, from_stage, to_stage,
        actor, funnel_rank, next_at, source, campaign, segment, territory, team_id, owner_id)
    SELECT md5('s' || l.lead_id || w.stage)::uuid, l.lead_id,
           l.first_at + w.after, 1, w.came_from, w.stage, 'bench', w.rank,
           CASE WHEN nx.stage IS NOT NULL AND (hashtext(l.lead_id) & 1023) < nx.keep
                THEN l.first_at + nx.after END,
           l.source, l.campaign, l.segment, l.territory, l.team_id, l.owner_id
    FROM analytics.leads l
    JOIN (VALUES (0, 'inquiry', NULL, interval '0', 1024),
                 (1, 'mql', 'inquiry', interval '2 days', 102),
                 (2, 'sal', 'mql', interval '3 days', 87),
                 (3, 'sql', 'sal', interval '8 days', 52),
                 (4, 'opportunity', 'sql', interval '11 days', 52),
                 (5, 'won', 'opportunity', interval '41 days', 16))
         AS w(rank, stage, came_from, after, keep)
      ON (hashtext(l.lead_id) & 1023) < w.keep
    LEFT JOIN (VALUES (0, 'mql', interval '2 days', 102), (1, 'sal', interval '3 days', 87),
                      (2, 'sql', interval '8 days', 52), (3, 'opportunity', interval '11 days', 52),
                      (4, 'won', interval '41 days', 16)) AS nx(rank, stage, after, keep)
      ON nx.rank = w.rank
    """,
    """
    UPDATE analytics.leads l SET stage = s.to_stage, stage_at = s.at, stage_order = s.funnel_rank
    FROM (SELECT DISTINCT ON (lead_id) lead_id, to_stage, at, funnel_rank
          FROM analytics.stage_changes ORDER BY lead_id, at DESC, funnel_rank DESC) s
    WHERE s.lead_id = l.lead_id AND s.to_stage <> 'inquiry'
    """,
    """
    INSERT INTO analytics.assignments (event_id, assignment_id, lead_id, at, stage, owner_id,
                                       team_id, territory, segment, reassignment)
    SELECT md5('a' || lead_id)::uuid, md5('as' || lead_id)::uuid, lead_id, at + interval '1 minute',
           'mql', owner_id, team_id, territory, segment, false
    FROM analytics.stage_changes WHERE to_stage = 'mql'
    """,
    """
    INSERT INTO analytics.feedback (event_id, lead_id, at, feedback, actor_id, opportunity_id,
                                    amount_minor, currency)
    SELECT md5('f' || lead_id || to_stage)::uuid, lead_id, at,
           CASE to_stage WHEN 'won' THEN 'won' ELSE 'converted' END, owner_id, 'opp-' || lead_id,
           1000000, 'EUR'
    FROM analytics.stage_changes WHERE to_stage IN ('opportunity', 'won')
    """,
    # the rest of the ten million: each lead's marketing touches and its owner's calls
    """
    INSERT INTO analytics.touches (event_id, lead_id, at, origin, kind, source, campaign, actor_id)
    SELECT md5('t' || l.lead_id || k)::uuid, l.lead_id, l.first_at + k * interval '7 hours',
           CASE WHEN k = 8 THEN 'sales' ELSE 'marketing' END,
           CASE WHEN k = 0 THEN 'form' WHEN k = 8 THEN 'call' ELSE 'page_view' END,
           l.source, l.campaign, CASE WHEN k = 8 THEN l.owner_id END
    FROM analytics.leads l, generate_series(0, :per_lead - 1) AS k
    """,
]


async def fill(url: str, leads: int, events: int) -> int:
    """Write the read model; returns how many facts (events) it holds."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(FILL[0]), {"start": START, "leads": leads})
            for sql in FILL[1:5]:
                await conn.execute(sa.text(sql))
            counted = 0
            for table in ("stage_changes", "assignments", "feedback"):
                counted += await conn.scalar(sa.text(f"SELECT count(*) FROM analytics.{table}"))
            per_lead = max(1, round((events - counted) / leads))
            await conn.execute(sa.text(FILL[5]), {"per_lead": per_lead})
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE"))
            total = 0
            for table in ("touches", "stage_changes", "assignments", "feedback"):
                total += await conn.scalar(sa.text(f"SELECT count(*) FROM analytics.{table}"))
        return total
    finally:
        await engine.dispose()


async def timed(
    client: httpx.AsyncClient, method: str, path: str, n: int, **kw: object
) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        resp = await client.request(method, path, **kw)  # type: ignore[arg-type]
        out.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text
    return out


async def bench_reports(
    stack: Stack, leads: int, events: int, requests: int
) -> tuple[list[float], list[float], int]:
    async with scratch_database(stack.database_url, "bench_analytics_reports") as url:
        await asyncio.to_thread(upgrade, "analytics", url, orm.SCHEMA)
        facts = await fill(url, leads, events)
        settings = AnalyticsSettings(
            database_url=url,
            kafka_bootstrap_servers=stack.bootstrap,
            consumer_group=f"bench-analytics-{uuid.uuid4().hex[:6]}",
            admin_token=TOKEN,
            consumer_offset_reset="latest",
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://a",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=60,
            ) as client:
                by_month = {
                    "since": START.isoformat(),
                    "until": (START + timedelta(days=366)).isoformat(),
                    "by": "month",
                }
                await timed(client, "GET", "/v1/waterfall", 2, params=by_month)
                waterfall = await timed(client, "GET", "/v1/waterfall", requests, params=by_month)
                example = PLAN_EXAMPLE
                await timed(client, "POST", "/v1/plan", 2, json=example)
                plan = await timed(client, "POST", "/v1/plan", requests, json=example)
    return waterfall, plan, facts


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.analytics")
    parser.add_argument("--smoke", action="store_true", help="one short run: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()
    runs, history, leads, events, requests = (
        (1, 300, 2_000, 20_000, 5)
        if args.smoke
        else (args.runs, 8_000, args.leads, args.events, 50)
    )
    report = Report("analytics: the consumer, and reports over a large read model")
    through = report.add(
        Figure(
            "events through the analytics consumer",
            "events/s",
            [],
            target=5_000,
            note="a seeded history of every event type, polls of ≤500",
        )
    )
    waterfall = report.add(
        Figure(
            f"waterfall of a year by month, {leads:,} leads",
            "ms p99",
            [],
            target=200,
            higher_is_better=False,
            note=f"a year; {requests} requests through the API",
        )
    )
    plan = report.add(
        Figure(
            "planner, the issue's example",
            "ms p99",
            [],
            target=100,
            higher_is_better=False,
            note="rates given; run rates of 180 days measured",
        )
    )
    work = scratch_dir("bench-analytics-")
    stack = Stack(data_dir=work, durable=False, pick_free_ports=True, log_file=work / "svc.log")
    try:
        stack.start_infra()
        for _ in range(runs):
            rate, count = asyncio.run(bench_consumer(stack, history))
            through.runs.append(rate)
            report.context["consumer_events"] = count
        w, p, facts = asyncio.run(bench_reports(stack, leads, events, requests))
        waterfall.runs.append(percentile(w, 99))
        plan.runs.append(percentile(p, 99))
        report.context.update(
            facts=facts,
            waterfall_p50_ms=round(percentile(w, 50), 1),
            plan_p50_ms=round(percentile(p, 50), 1),
        )
    finally:
        stack.stop()
        remove_scratch(work)
    report.context.update(runs=runs, cores=machine()["cores"])
    report.finish("analytics", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
