"""``python -m bench.sla``: alert lateness with 100,000 open SLA clocks, and the scheduler's
database load.

100,000 clocks (as the consumer writes them) have deadlines spread evenly over two minutes,
starting a few seconds after they are loaded. One scheduler (the service's own loop: claim due
clocks ``FOR UPDATE SKIP LOCKED``, fire, record the alert, the ``sla.breached`` outbox row and
the webhook delivery, one transaction per batch of ≤500) runs until every clock fired.

Figures: alert lateness (recorded ``fired_at`` minus the deadline) p50, p99 and max (target
p99 ≤ 1 s); alerts per second sustained; and the database load while it ran, from
``pg_stat_database``: transactions and rows written per second, and the scheduler's CPU share.
The run uses a database of its own and removes it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import (
    Figure,
    Report,
    machine,
    percentile,
    remove_scratch,
    scratch_database,
    scratch_dir,
)
from devstack import postgres
from leadrelay_shared.clock import every
from leadrelay_shared.contracts import Stage
from leadrelay_shared.db import make_engine
from leadrelay_shared.logging import configure
from leadrelay_shared.migrate import upgrade
from sla_monitor import domain, handlers
from sla_monitor.adapters import orm
from sla_monitor.adapters.repository import SlaUnitOfWork, row_of
from sla_monitor.config import parse

POLICIES = """version: bench
calendars: [{id: always, always: true}]
policies: [{id: bench, calendar: always, first_touch: 1h, warning_at: null}]
channels: [{id: ops, type: webhook, url: "http://127.0.0.1:9/unused"}]
"""


async def _stats(engine: Any) -> dict[str, float]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT xact_commit, tup_inserted, tup_updated, tup_fetched "
                    "FROM pg_stat_database WHERE datname = current_database()"
                )
            )
        ).one()
    return {"xact": row[0], "inserted": row[1], "updated": row[2], "fetched": row[3]}


class LoadedTooLate(RuntimeError):
    """The clocks were not all stored before the first of them fell due: no lateness to read."""


async def run_once(
    database_url: str, clocks: int, spread_s: float, lead_s: float
) -> dict[str, float]:
    async with scratch_database(database_url, "bench_sla") as url:
        await asyncio.to_thread(upgrade, "sla_monitor", url, orm.SCHEMA)
        config = parse(POLICIES)
        policy = config.policies[0]
        engine = make_engine(url, pool_size=4)
        start = datetime.now(UTC) + timedelta(seconds=lead_s)
        rows = []
        for i in range(clocks):
            due = start + timedelta(seconds=spread_s * i / clocks)
            h = domain.Handoff(
                f"lead-{i}",
                uuid.uuid4(),
                Stage.MQL,
                domain.Person(f"rep-{i % 200}", "Rep"),
                f"team-{i % 10}",
                due - policy.first_touch,
            )
            rows.append(row_of(domain.start_clock(h, policy, config.version)))
        async with engine.begin() as conn:
            for chunk in range(0, len(rows), 5000):
                await conn.execute(sa.insert(orm.clocks), rows[chunk : chunk + 5000])
        async with engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE sla.clocks"))
        loaded = datetime.now(UTC)
        if loaded > start:
            raise LoadedTooLate(f"loading took too long: {loaded - start} past the first deadline")

        fired = 0
        all_fired = asyncio.Event()

        async def tick() -> int:
            nonlocal fired
            alerts = await handlers.fire_due(
                uow=SlaUnitOfWork(engine), config=config, now=datetime.now(UTC), limit=500
            )
            fired += len(alerts)
            if fired >= clocks:
                all_fired.set()
            return len(alerts)

        before = await _stats(engine)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        scheduler = asyncio.create_task(every(0.1, tick, name="scheduler", batch=500))
        try:
            await asyncio.wait_for(all_fired.wait(), timeout=spread_s + lead_s + 120)
        finally:
            scheduler.cancel()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        after = await _stats(engine)
        async with engine.connect() as conn:
            late = [
                float(r[0])
                for r in await conn.execute(
                    sa.text("SELECT extract(epoch FROM fired_at - scheduled_at) FROM sla.alerts")
                )
            ]
        await engine.dispose()
    active = spread_s  # the deadlines span this long; the scheduler idles before the first
    return {
        "p50": percentile(late, 50),
        "p99": percentile(late, 99),
        "max": max(late),
        "alerts": len(late),
        "rate": len(late) / active,
        "xact_s": (after["xact"] - before["xact"]) / wall,
        "written_s": (after["inserted"] + after["updated"] - before["inserted"] - before["updated"])
        / wall,
        "cpu": 100.0 * cpu / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.sla")
    parser.add_argument("--smoke", action="store_true", help="one short run: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clocks", type=int, default=100_000)
    parser.add_argument("--spread", type=float, default=120.0, help="seconds the deadlines span")
    args = parser.parse_args()
    configure("bench-sla", "warning")  # the scheduler's own logs are not the figures
    runs, clocks, spread, lead = (
        (1, 2_000, 4.0, 4.0) if args.smoke else (args.runs, args.clocks, args.spread, 25.0)
    )
    report = Report("sla-monitor: alert lateness with open clocks, scheduler database load")
    p50 = report.add(Figure("alert lateness p50", "s", [], higher_is_better=False))
    p99 = report.add(
        Figure(
            "alert lateness p99",
            "s",
            [],
            target=1.0,
            higher_is_better=False,
            note=f"{clocks:,} clocks due over {spread:g} s, one scheduler",
        )
    )
    worst = report.add(Figure("alert lateness max", "s", [], higher_is_better=False))
    rate = report.add(Figure("alerts fired", "alerts/s", [], note="alert + outbox + webhook row"))
    xact = report.add(Figure("database transactions", "commits/s", [], higher_is_better=False))
    written = report.add(Figure("database rows written", "rows/s", [], higher_is_better=False))
    cpu = report.add(Figure("scheduler CPU", "% of a core", [], higher_is_better=False))
    work = scratch_dir("bench-sla-")
    url, server = os.environ.get("DATABASE_URL", ""), None
    if not url:
        server = postgres.start(
            work / "postgres", port=None, durable=False, log_path=work / "postgres.log"
        )
        url = server.url
    try:
        for _ in range(runs):
            try:
                r = asyncio.run(run_once(url, clocks, spread, lead))
            except LoadedTooLate as exc:  # a slow phase of the machine: once more, more time
                lead *= 2
                report.context.setdefault("loading_retried", []).append(str(exc))
                r = asyncio.run(run_once(url, clocks, spread, lead))
            for figure, key in (
                (p50, "p50"),
                (p99, "p99"),
                (worst, "max"),
                (rate, "rate"),
                (xact, "xact_s"),
                (written, "written_s"),
                (cpu, "cpu"),
            ):
                figure.runs.append(round(r[key], 4))
    finally:
        if server is not None:
            server.stop()
        remove_scratch(work)
    report.context.update(
        runs=runs,
        clocks=clocks,
        spread_s=spread,
        lead_s=lead,
        cores=machine()["cores"],
        postgres="local, fsync off (as in the other benches)",
    )
    report.finish("sla", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
