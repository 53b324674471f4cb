"""``leadrelay status``: the pipeline's health now, in one table. Each service up and ready,
each consumer group's lag, the outboxes' backlogs, webhooks and alerts waiting or dead, the
dead-letter topic, open and breached SLA clocks. It asks the services' ``/readyz``, Kafka and
PostgreSQL directly, so it answers when a service does not."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa

from leadrelay_shared import backlog
from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import group_lags, records_on
from leadrelay_shared.settings import ServiceSettings

from .stack import SERVICES


@dataclass
class Status:
    at: datetime
    services: list[dict[str, Any]] = field(default_factory=list)
    lag: list[dict[str, Any]] | None = None  # None: Kafka was not reached
    outboxes: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: int | None = None
    clocks: dict[str, int] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def service_url(name: str, default_port: int) -> str:
    variable = f"LEADRELAY_{name.upper().replace('-', '_')}_URL"
    return os.environ.get(variable, f"http://127.0.0.1:{default_port}")


async def probe(client: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
    try:
        answer = await client.get(f"{url}/readyz")
    except httpx.HTTPError as exc:
        return {"service": name, "url": url, "up": False, "ready": False, "why": type(exc).__name__}
    checks = answer.json().get("checks", {}) if answer.content else {}
    failing = ", ".join(k for k, ok in checks.items() if not ok)
    return {
        "service": name,
        "url": url,
        "up": True,
        "ready": answer.status_code == 200,
        "why": f"not ready: {failing}" if failing else "",
    }


async def database_figures(url: str, status: Status) -> None:
    from router.adapters import orm as router
    from scoring.adapters import orm as scoring
    from sla_monitor.adapters import orm as sla

    engine = make_engine(url, name="leadrelay-status")
    try:
        async with engine.connect() as conn:

            async def exists(table: sa.Table) -> bool:
                name = f"{table.schema}.{table.name}"
                return await conn.scalar(sa.text("SELECT to_regclass(:t)"), {"t": name}) is not None

            for table in (scoring.outbox, router.outbox, sla.outbox):
                if await exists(table):
                    count, age = await backlog.outbox(conn, table, status.at)
                    status.outboxes.append(
                        {"schema": table.schema, "backlog": count, "oldest_s": age}
                    )
            for table, what in ((router.deliveries, "webhooks"), (sla.deliveries, "alerts")):
                if await exists(table):
                    counts = await backlog.deliveries(conn, table)
                    status.deliveries.append(
                        {
                            "schema": table.schema,
                            "what": what,
                            "pending": counts["pending"],
                            "dead": counts["dead"] + counts["gone"],
                        }
                    )
            if await exists(sla.clocks):
                c = sla.clocks
                open_clocks = c.c.status == "open"
                row = (
                    await conn.execute(
                        sa.select(
                            sa.func.count(), sa.func.count().filter(c.c.due_at < status.at)
                        ).where(open_clocks)
                    )
                ).one()
                status.clocks = {"open": row[0], "breached": row[1]}
    finally:
        await engine.dispose()


async def collect(timeout_s: float = 3.0) -> Status:
    settings = ServiceSettings()
    status = Status(at=utcnow())
    async with httpx.AsyncClient(timeout=timeout_s) as client:
        probes = [probe(client, s.name, service_url(s.name, s.default_port)) for s in SERVICES]
        status.services = list(await asyncio.gather(*probes))
    for s in status.services:
        if not s["ready"]:
            status.problems.append(f"{s['service']} is {'not ready' if s['up'] else 'down'}")
    try:
        lags = await asyncio.wait_for(group_lags(settings.kafka_bootstrap_servers), timeout_s * 3)
        status.lag = [asdict(g) | {"lag": g.lag} for g in lags]
        status.dead_letters = await records_on(settings.kafka_bootstrap_servers, Topics.DEAD_LETTER)
    except Exception as exc:  # the table says which part could not be read
        status.problems.append(f"Kafka: {exc or type(exc).__name__}")
    try:
        await asyncio.wait_for(database_figures(settings.database_url, status), timeout_s * 3)
    except Exception as exc:
        status.problems.append(f"PostgreSQL: {exc or type(exc).__name__}")
    for d in status.deliveries:
        if d["dead"]:
            status.problems.append(f"{d['dead']} dead {d['what']} ({d['schema']})")
    return status


GREEN, RED, YELLOW, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[0m"


def render(status: Status, colour: bool) -> str:
    def paint(text: str, tone: str) -> str:
        return f"{tone}{text}{RESET}" if colour else text

    lines = [f"leadrelay status at {status.at:%Y-%m-%d %H:%M:%S} UTC", "", "services"]
    for s in status.services:
        state = (
            paint("ready", GREEN)
            if s["ready"]
            else paint("not ready", YELLOW)
            if s["up"]
            else paint("down", RED)
        )
        lines.append(f"  {s['service']:<12} {state:<20} {s['url']}  {s['why']}".rstrip())
    lines += ["", "consumer lag (group / topic: records behind)"]
    by_group: dict[tuple[str, str], int] = {}
    for g in status.lag or []:
        key = (g["group"], g["topic"])
        by_group[key] = by_group.get(key, 0) + g["lag"]
    for (group, topic), lag in sorted(by_group.items()):
        lines.append(f"  {group:<32} {topic:<26} {paint(str(lag), YELLOW if lag else GREEN)}")
    if status.lag is None:
        lines.append("  (Kafka not reached)")
    elif not by_group:
        lines.append("  (no group has committed yet)")
    lines += ["", "outboxes (rows not yet on Kafka)"]
    for o in status.outboxes:
        tone = YELLOW if o["backlog"] else GREEN
        lines.append(
            f"  {o['schema']:<12} {paint(str(o['backlog']), tone)} (oldest {o['oldest_s']:.1f} s)"
        )
    lines += ["", "deliveries"]
    for d in status.deliveries:
        dead = paint(str(d["dead"]), RED if d["dead"] else GREEN)
        lines.append(f"  {d['what']:<12} pending {d['pending']}, dead {dead}")
    if status.dead_letters is not None:
        lines.append(f"  dead-letter topic   {status.dead_letters} records")
    if status.clocks is not None:
        breached = paint(
            str(status.clocks["breached"]), RED if status.clocks["breached"] else GREEN
        )
        lines += ["", f"SLA clocks: {status.clocks['open']} open, {breached} past their deadline"]
    lines += [""] + (
        [paint(f"problem: {p}", RED) for p in status.problems]
        if status.problems
        else [paint("all well", GREEN)]
    )
    return "\n".join(lines)


def main(as_json: bool) -> int:
    """Print the status; the exit code is 1 when a service is down or something is dead."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its reasons are in the table
    status = asyncio.run(collect())
    if as_json:
        print(json.dumps(asdict(status) | {"healthy": status.healthy}, default=str, indent=2))
    else:
        print(render(status, colour=sys.stdout.isatty()))
    return 0 if status.healthy else 1
