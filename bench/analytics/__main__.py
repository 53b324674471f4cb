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

from analytics import handlers
from analytics.adapters import orm
from analytics.adapters.repository import AnalyticsUnitOfWork
from analytics.bootstrap import create_app
from analytics.schemas import PLAN_EXAMPLE
from analytics.settings import AnalyticsSettings
from bench.analytics import histories, readmodel
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
POLL = AnalyticsSettings.model_fields["consumer_max_records"].default  # as the service polls


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
                stack.bootstrap, topic, producer, len(events), record, NoRelay(), max_records=POLL
            )
        finally:
            await producer.stop()
            await engine.dispose()
    return len(events) / elapsed, len(events)


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
        facts = await readmodel.fill(url, leads, events, START)
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
            note=f"a seeded history of every event type, polls of ≤{POLL:,}",
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
