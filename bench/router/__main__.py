"""``python -m bench.router``: the pure routing decision, assignments through the consumer, and
webhook deliveries.

Figures:

* latency of ``domain.decide`` (account matching, territory, strategy with capacity and
  availability) with 1,000 reps, 10,000 accounts and 500 territory rules: p50 and p99
  (target p99 ≤ 1 ms);
* ``lead.stage.changed`` events per second through router's consumer with PostgreSQL: poll,
  decode, claim, lock pointers, read loads, decide, write assignments, loads, owners, outbox and
  webhook rows, commit offsets, with the outbox relay running (target ≥ 1,000/s);
* webhook deliveries per second from the PostgreSQL queue to a local receiver (another process):
  lease, sign (Standard Webhooks), POST, record the attempt;
* what-if: the seconds to replay 100,000 leads routed over 30 days through a candidate
  configuration (one rep in five of every team paused, every weight changed): read the window,
  decide each lead again, sum up (target ≤ 10 s).

The database runs use a database (and a topic) of their own and remove them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import sqlalchemy as sa

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
from devstack.ports import free_port
from devstack.stack import Stack
from leadrelay_shared.codec import encode
from leadrelay_shared.contracts import Event, LeadSnapshot, Reason, Stage, StageChanged, Topics
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import Deliverer, http_client
from leadrelay_shared.kafka import ensure_topics, make_producer
from leadrelay_shared.migrate import upgrade
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import settle_heap
from router import domain, handlers, views
from router.adapters import orm
from router.adapters.repository import RouterUnitOfWork
from router.config import RoutingConfig, compile_config, from_document
from router.simulation import Routed, Start, decide_all

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday, working hours in Europe
COUNTRIES = [
    "US",
    "CA",
    "GB",
    "FR",
    "DE",
    "ES",
    "IT",
    "NL",
    "BE",
    "SE",
    "NO",
    "DK",
    "FI",
    "PL",
    "AT",
    "CH",
    "IE",
    "PT",
    "BR",
    "MX",
    "AU",
    "NZ",
    "JP",
    "SG",
    "IN",
]
INDUSTRIES = [
    "software",
    "retail",
    "manufacturing",
    "fintech",
    "healthcare",
    "education",
    "logistics",
    "media",
]
ZONES = [
    "Europe/Paris",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Singapore",
    "Australia/Sydney",
]
SECRET = "whsec_YmVuY2gtcm91dGVyLXNlY3JldC1rZXk="


def _word(rnd: random.Random) -> str:
    return "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(4, 9)))


def large_document(
    reps: int = 1000,
    accounts: int = 10_000,
    territories: int = 500,
    webhook_url: str | None = None,
    seed: int = 3,
) -> dict[str, Any]:
    """1,000 reps in 50 teams of 20 (every strategy), 500 territories, 10,000 accounts."""
    rnd = random.Random(seed)
    rep_docs = [
        {
            "id": f"rep-{i}",
            "name": f"Rep {i}",
            "timezone": rnd.choice(ZONES),
            "capacity": {"day": 500, "week": 2000},
            **(
                {"out_of_office": [{"from": "2026-11-23", "to": "2026-11-27"}]}
                if i % 37 == 0
                else {}
            ),
            **({"paused": True} if i % 53 == 0 else {}),
        }
        for i in range(reps)
    ]
    strategies = ["round_robin", "weighted_round_robin", "least_loaded"]
    teams = [
        {
            "id": f"team-{t}",
            "name": f"Team {t}",
            "stages": ["mql", "sql"],
            "strategy": strategies[t % 3],
            "respect_working_hours": t % 2 == 0,
            "members": [{"rep": f"rep-{t * 20 + k}", "weight": 1 + k % 3} for k in range(20)],
            "fallback": {"queue": f"queue-{t}"},
        }
        for t in range(reps // 20)
    ]
    terr = []
    for i in range(territories):
        rule: dict[str, Any] = {
            "id": f"terr-{i}",
            "priority": i,
            "countries": rnd.sample(COUNTRIES, 2),
            "teams": {"mql": f"team-{i % 50}", "sql": f"team-{(i + 7) % 50}"},
        }
        if i % 3 == 0:
            rule["industries"] = rnd.sample(INDUSTRIES, 2)
        if i % 4 == 0:
            low = rnd.randrange(10, 90) * 1000
            rule["postal_codes"] = [f"{low:05d}-{low + 4999:05d}"]
        if i % 5 == 0:
            rule["segments"] = [rnd.choice(["smb", "mid", "ent"])]
        terr.append(rule)
    names = set()
    account_docs = []
    for i in range(accounts):
        name = " ".join(_word(rnd) for _ in range(rnd.randint(1, 3)))
        if name in names:
            continue
        names.add(name)
        account_docs.append(
            {
                "id": f"acc-{i}",
                "name": f"{name.title()} Inc",
                "domains": [f"{name.replace(' ', '')}.example"],
                **({"owner": f"rep-{rnd.randrange(reps)}"} if i % 2 else {}),
            }
        )
    return {
        "version": "bench",
        "timezone": "Europe/Paris",
        "reps": rep_docs,
        "teams": teams,
        "segments": [
            {"id": "smb", "max": 199},
            {"id": "mid", "min": 200, "max": 999},
            {"id": "ent", "min": 1000},
        ],
        "territories": terr,
        "default_teams": {"mql": "team-0", "sql": "team-1"},
        "accounts": account_docs,
        "webhooks": [{"id": "sink", "url": webhook_url, "secret": SECRET}] if webhook_url else [],
    }


def sample_leads(cfg: RoutingConfig, n: int, seed: int = 5) -> list[LeadSnapshot]:
    """A mix: business domains of accounts (and their subdomains), free mail with the company
    name (some misspelt), and companies nobody knows."""
    rnd = random.Random(seed)
    accounts = cfg.accounts.accounts
    out = []
    for i in range(n):
        account = rnd.choice(accounts)
        kind = i % 10
        domain_, free, company = f"{_word(rnd)}.example", False, _word(rnd).title()
        if kind < 3:
            domain_ = account.domains[0]
        elif kind == 3:
            domain_ = f"eu.{account.domains[0]}"
        elif kind < 6:
            domain_, free, company = "gmail.com", True, account.name.replace(" Inc", "")
        elif kind == 6:
            name = account.name
            pos = rnd.randrange(len(name))
            domain_, free, company = "gmail.com", True, name[:pos] + name[pos + 1 :]
        out.append(
            LeadSnapshot(
                email=f"lead{i}@{domain_}",
                email_domain=domain_,
                is_free_email=free,
                company=company,
                country=rnd.choice(COUNTRIES),
                postal_code=f"{rnd.randrange(10000, 99999)}",
                company_size=rnd.choice([10, 150, 600, 5000]),
                industry=rnd.choice(INDUSTRIES),
            )
        )
    return out


def bench_pure(cfg: RoutingConfig, leads: list[LeadSnapshot]) -> tuple[float, float, float]:
    """p50 and p99 latency of one decision in ms, and decisions per second."""
    loads: dict[str, dict[Any, int]] = {}
    pointers: dict[str, int] = {}
    times = []
    started = time.perf_counter()
    for i, lead in enumerate(leads):
        stage = Stage.MQL if i % 3 else Stage.SQL
        t0 = time.perf_counter_ns()
        target = domain.plan(lead, stage, cfg)
        d = domain.choose(target, cfg, pointers.get(target.team_id or "", 0), loads, NOW)
        times.append((time.perf_counter_ns() - t0) / 1e6)
        if d.rep_id:
            day = domain.local_day(cfg.reps[d.rep_id], NOW)
            per = loads.setdefault(d.rep_id, {})
            per[day] = per.get(day, 0) + 1
        if d.team_id and d.pointer_after is not None:
            pointers[d.team_id] = d.pointer_after
    elapsed = time.perf_counter() - started
    return percentile(times, 50), percentile(times, 99), len(leads) / elapsed


def stage_events(leads: list[LeadSnapshot]) -> list[StageChanged]:
    return [
        StageChanged(
            lead_id=str(uuid.uuid4()),
            occurred_at=NOW,
            from_stage=Stage.INQUIRY,
            to_stage=Stage.MQL if i % 3 else Stage.SQL,
            reasons=(Reason(rule_id="mql", message="qualified"),),
            model_version="bench",
            cause_event_id=uuid.uuid4(),
            lead=lead,
        )
        for i, lead in enumerate(leads)
    ]


async def bench_consumer(
    stack: Stack, doc: dict[str, Any], count: int
) -> tuple[float, float, dict[str, Any]]:
    """Assignments per second through the consumer, then deliveries per second of their webhooks."""
    topic = f"leadrelay.bench.router.{uuid.uuid4().hex[:8]}"
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "bench.router.sink", str(sink_port)])
    doc = {
        **doc,
        "webhooks": [{"id": "sink", "url": f"http://127.0.0.1:{sink_port}/hook", "secret": SECRET}],
    }
    cfg = compile_config(from_document(doc))
    try:
        async with scratch_database(stack.database_url, "bench_router") as url:
            await asyncio.to_thread(upgrade, "router", url, orm.SCHEMA)
            await ensure_topics(stack.bootstrap, {topic: Topics.PARTITIONS[Topics.SCORING]})
            rate, seconds = await _consume(stack.bootstrap, url, topic, cfg, count)
            deliveries = await _deliver(url, cfg, count, sink_port)
        return rate, deliveries, {"assignments": count, "consumer_seconds": round(seconds, 2)}
    finally:
        sink.terminate()
        sink.wait()


async def _consume(
    bootstrap: str, url: str, topic: str, cfg: RoutingConfig, count: int
) -> tuple[float, float]:
    producer = make_producer(bootstrap, client_id="bench-router", send_timeout_s=30)
    await producer.start()
    events = stage_events(sample_leads(cfg, count, seed=count))
    futures = []
    for event in events:
        record = encode(event)
        futures.append(
            await producer.send(topic, value=record.value, key=record.key, headers=record.headers)
        )
    await asyncio.gather(*futures)
    engine = make_engine(url)
    relay = OutboxRelay(engine, orm.outbox, producer, poll_interval_s=0.2)

    async def batch(evs: Sequence[Event]) -> None:
        await handlers.handle_batch(evs, uow=RouterUnitOfWork(engine), config=cfg, now=lambda: NOW)

    try:
        elapsed = await drive_consumer(bootstrap, topic, producer, count, batch, relay)
    finally:
        await producer.stop()
        await engine.dispose()
    return count / elapsed, elapsed


async def _deliver(url: str, cfg: RoutingConfig, count: int, port: int) -> float:
    engine = make_engine(url)
    async with http_client(10) as client:  # the client router's deliverer uses
        for _ in range(100):  # the sink is up
            try:
                async with client.post(f"http://127.0.0.1:{port}/hook", data=b"{}"):
                    break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        deliverer = Deliverer(
            engine,
            orm.deliveries,
            cfg.endpoints(),
            client,
            batch_size=200,
            states=orm.endpoint_states,
            attempts=orm.attempts,
        )
        started, sent = time.perf_counter(), 0
        while sent < count:
            n = await deliverer.deliver_once()
            if n == 0:
                break
            sent += n
        elapsed = time.perf_counter() - started
    await engine.dispose()
    return sent / elapsed


def candidate_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The large configuration with one member in five of every team paused and every weight
    changed: most leads get another owner."""
    reps = [
        {**r, "paused": True} if int(r["id"].split("-")[1]) % 5 == 0 else r for r in doc["reps"]
    ]
    teams = [
        {**t, "members": [{**m, "weight": 4 - m["weight"]} for m in t["members"]]}
        for t in doc["teams"]
    ]
    return {**doc, "version": "bench-candidate", "reps": reps, "teams": teams}


async def bench_simulation(stack: Stack, doc: dict[str, Any], leads: int) -> tuple[float, int]:
    """Seconds to replay ``leads`` routed over 30 days through the candidate, and how many
    changed owner."""
    cfg = compile_config(from_document(doc))
    candidate = compile_config(from_document(candidate_document(doc)))
    since = NOW - timedelta(days=30)
    async with scratch_database(stack.database_url, "bench_router_sim") as url:
        await asyncio.to_thread(upgrade, "router", url, orm.SCHEMA)
        engine = make_engine(url)
        try:
            await _write_history(engine, cfg, leads, since)
            settle_heap()  # as the service runs: its configuration out of the collector's sight
            started = time.perf_counter()
            result = await views.what_if(engine, candidate, since, NOW)
            elapsed = time.perf_counter() - started
        finally:
            await engine.dispose()
    assert len(result.leads) == leads
    return elapsed, len(result.changed)


async def _write_history(engine: Any, cfg: RoutingConfig, leads: int, since: datetime) -> None:
    """What router decides for ``leads`` over the 30 days before ``NOW`` (the replay's own
    functions under the configuration of the bench), written as router writes assignments."""
    step = (NOW - since) / leads
    history = [
        Routed(
            assignment_id=uuid.uuid4(),
            lead_id=str(uuid.uuid4()),
            at=since + i * step,
            kind="assign",
            stage=Stage.MQL if i % 3 else Stage.SQL,
            lead=lead,
            owner_id=None,
            queue=None,
            team_id=None,
            territory=None,
            strategy="none",
        )
        for i, lead in enumerate(sample_leads(cfg, leads, seed=leads + 1))
    ]
    rows = [
        {
            "id": r.assignment_id,
            "lead_id": r.lead_id,
            "stage": r.stage.value,
            "owner_id": d.rep_id,
            "queue": d.queue,
            "team_id": d.team_id or "(none)",
            "strategy": d.strategy,
            "decision": d.as_record(),
            "config_version": cfg.version,
            "cause_event_id": uuid.uuid4(),
            "created_at": r.at,
            "kind": "assign",
            "lead": r.lead.model_dump(mode="json"),
        }
        for r, d in decide_all(history, Start({}, {}, {}), cfg)
    ]
    for at in range(0, len(rows), 5000):
        async with RouterUnitOfWork(engine) as uow:
            await uow.assignments.add_many(rows[at : at + 5000])
            await uow.commit()
    async with engine.connect() as conn:  # as autovacuum would soon after a load this size
        await conn.execute(sa.text(f"ANALYZE {orm.SCHEMA}.{orm.assignments.name}"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.router")
    parser.add_argument("--smoke", action="store_true", help="one short run: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--simulated", type=int, default=100_000, help="leads in the what-if")
    args = parser.parse_args()
    runs, decisions, count = (1, 500, 300) if args.smoke else (args.runs, 20_000, args.events)
    simulated = 2_000 if args.smoke else args.simulated
    report = Report("router: pure decisions, assignments through the consumer, webhook deliveries")
    doc = large_document()
    cfg = compile_config(from_document(doc))
    p50 = report.add(
        Figure(
            "pure decision p50",
            "ms",
            [],
            higher_is_better=False,
            note="1,000 reps, 10,000 accounts, 500 territories",
        )
    )
    p99 = report.add(
        Figure(
            "pure decision p99",
            "ms",
            [],
            target=1.0,
            higher_is_better=False,
            note="matching + territory + strategy, capacity and hours",
        )
    )
    rate = report.add(Figure("pure decisions", "decisions/s", []))
    through = report.add(
        Figure(
            "assignments through the router consumer",
            "assignments/s",
            [],
            target=1_000,
            note="batches of ≤500, same large config, relay on",
        )
    )
    hooks = report.add(
        Figure(
            "webhook deliveries to a local receiver",
            "deliveries/s",
            [],
            note="lease 200, sign, POST, record the attempt",
        )
    )
    what_if = report.add(
        Figure(
            f"what-if: {simulated:,} routed leads replayed",
            "s",
            [],
            target=10.0,
            higher_is_better=False,
            note="30 days read, decided again under a candidate, summed up",
        )
    )
    leads = sample_leads(cfg, decisions)
    for _ in range(runs):
        a, b, c = bench_pure(cfg, leads)
        p50.runs.append(a)
        p99.runs.append(b)
        rate.runs.append(c)
    work = scratch_dir("bench-router-")
    stack = Stack(data_dir=work, durable=False, pick_free_ports=True, log_file=work / "svc.log")
    try:
        stack.start_infra()
        for _ in range(runs):
            assigned, delivered, context = asyncio.run(bench_consumer(stack, doc, count))
            through.runs.append(assigned)
            hooks.runs.append(delivered)
            report.context.update(context)
        for _ in range(runs):
            seconds, changed = asyncio.run(bench_simulation(stack, doc, simulated))
            what_if.runs.append(seconds)
            report.context.update(simulated=simulated, simulated_changed=changed)
    finally:
        stack.stop()
        remove_scratch(work)
    report.context.update(
        runs=runs,
        cores=machine()["cores"],
        reps=len(cfg.reps),
        accounts=len(cfg.accounts),
        territories=len(cfg.territories),
    )
    report.finish("router", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
