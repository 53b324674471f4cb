"""``python -m bench.scoring``: the pure scoring function, then the scoring consumer end to end.

Figures:

* evaluations per second of ``domain.apply`` (fit, decayed engagement, stage decision) with a
  50-rule model on profiles that already carry engagement history (target ≥ 50,000/s);
* intake events per second through scoring's consumer with PostgreSQL: Kafka poll, decode,
  claim, lock and load the leads, decide, write profiles, timeline, history and outbox, commit
  offsets, with the outbox relay publishing in the same process (target ≥ 2,000/s);
* what-if: the seconds to re-score 100,000 leads of a 30-day window (a form fill and two
  engagement events each) under a candidate model: read their events and where the shipped
  model left them, replay each under the candidate, sum up (target ≤ 10 s).

The consumer run uses a topic and a database of its own on the PostgreSQL and Kafka it starts
(or on ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``), and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench.common import (
    Figure,
    Report,
    drive_consumer,
    machine,
    remove_scratch,
    scratch_database,
    scratch_dir,
)
from devstack.stack import Stack
from intake import domain as intake_domain
from leadrelay_shared import jsonio
from leadrelay_shared.codec import encode
from leadrelay_shared.contracts import EngagementRecorded, Event, FormSubmitted, Topics, lead_id_for
from leadrelay_shared.db import copy_rows, make_engine
from leadrelay_shared.kafka import ensure_topics, make_producer
from leadrelay_shared.migrate import upgrade
from leadrelay_shared.outbox import OutboxRelay
from leadrelay_shared.runtime import settle_heap
from scoring import domain, handlers, simulation, timeline, views
from scoring.adapters import orm
from scoring.adapters.repository import ScoringUnitOfWork
from scoring.config import ScoringModel, default_model, default_text, parse
from scoring.settings import ScoringSettings

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOBODY = simulation.Scored(None, 0, "F", 0, False, ())
LANES = ScoringSettings.model_fields["consumer_lanes"].default  # as the service runs by default
KINDS = [
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "ad_click",
]
INDUSTRIES = ["software", "saas", "retail", "manufacturing", "fintech", "health", "education"]


def fifty_rule_model() -> ScoringModel:
    """30 fit rules and 20 engagement rules, of every kind of test the model language has."""
    fit = []
    for i in range(30):
        field, test = [
            ("industry", f"in: [{INDUSTRIES[i % 7]}, x{i}]"),
            ("company_size", f"between: [{i * 10}, {i * 10 + 500}]"),
            ("title", f"any_word: [vp, head, director, w{i}]"),
            ("country", f"in: [US, GB, DE, C{i}]"),
            ("is_free_email", "equals: false"),
            ("company", "present: true"),
        ][i % 6]
        fit.append(f"  - {{id: fit.r{i}, field: {field}, {test}, points: {i % 7 - 2}}}")
    eng = [
        f"  - {{id: eng.r{i}, event: {KINDS[i % 7]}, points: {i % 9 + 1}, cap: {30 + i}"
        + (f", url_contains: /p{i % 3}" if i % 4 == 0 else "")
        + "}"
        for i in range(20)
    ]
    text = "\n".join(
        [
            "version: bench-50",
            "grades: {A: 40, B: 25, C: 10, D: 5}",
            "fit:",
            *fit,
            "engagement:",
            *eng,
            "fast_lanes:",
            "  - {id: fast.demo, event: demo_requested}",
        ]
    )
    model = parse(text, "bench-50")
    assert len(model.fit_rules) + len(model.engagement_rules) == 50
    return model


def sample_form(rnd: random.Random, email: str, at: datetime) -> FormSubmitted:
    lead = intake_domain.snapshot(
        email=email,
        first_name="Ada",
        company=f"Co {rnd.randrange(500)}",
        title=rnd.choice(["VP Sales", "Engineer", "Head of Data", "Director IT", "Analyst"]),
        country=rnd.choice(["US", "GB", "DE", "FR", "BR"]),
        company_size=rnd.randrange(1, 9000),
        industry=rnd.choice(INDUSTRIES),
    )
    return intake_domain.form_submitted(
        lead=lead,
        event_id=uuid.uuid4(),
        occurred_at=at,
        received_at=at,
        source_system="web",
        fields={},
        consent={},
        utm={},
        page_url="https://example.com/p1",
    )


def sample_engagement(rnd: random.Random, lead_id: str, at: datetime) -> EngagementRecorded:
    return EngagementRecorded(
        lead_id=lead_id,
        occurred_at=at,
        received_at=at,
        engagement_type=rnd.choice(KINDS),
        url=f"https://example.com/p{rnd.randrange(4)}",
    )


def bench_pure(seconds: float) -> float:
    """Evaluations per second of the pure decision, on leads with 20 prior engagement hits."""
    rnd = random.Random(7)
    model = fifty_rule_model()
    profiles: list[domain.LeadProfile] = []
    for n in range(200):
        email = f"lead{n}@example{n % 50}.com"
        p = domain.apply(None, sample_form(rnd, email, T0), model, T0).profile
        assert p is not None
        for k in range(20):
            at = T0 + timedelta(hours=k)
            p = domain.apply(p, sample_engagement(rnd, p.lead_id, at), model, at).profile or p
        profiles.append(p)
    now = T0 + timedelta(days=2)
    events: list[Event] = [
        sample_form(rnd, profiles[i % 200].snapshot.email or "", now)
        if i % 5 == 0
        else sample_engagement(rnd, profiles[i % 200].lead_id, now)
        for i in range(5000)
    ]
    settle_heap()  # the collector as the service runs it (bootstrap settles once started)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for i, event in enumerate(events):
            domain.apply(profiles[i % 200], event, model, now)
        done += len(events)
    return done / (time.perf_counter() - started)


Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


def intake_events(count: int, leads: int, topic: str) -> list[Record]:
    rnd = random.Random(11)
    emails = [f"bench-{uuid.uuid4().hex[:10]}@example{n % 300}.com" for n in range(leads)]
    out = []
    for i in range(count):
        at = T0 + timedelta(seconds=i)
        email = emails[rnd.randrange(leads)]
        event: Event = (
            sample_form(rnd, email, at)
            if rnd.random() < 0.25
            else sample_engagement(rnd, lead_id_for(email), at)
        )
        record = encode(event)
        out.append((topic, record.key, record.value, record.headers))
    return out


async def bench_consumer(stack: Stack, count: int, leads: int) -> tuple[float, dict[str, float]]:
    topic = f"leadrelay.bench.scoring.{uuid.uuid4().hex[:8]}"
    async with scratch_database(stack.database_url, "bench_scoring") as url:
        await asyncio.to_thread(upgrade, "scoring", url, orm.SCHEMA)
        await ensure_topics(stack.bootstrap, {topic: Topics.PARTITIONS[Topics.INTAKE]})
        return await _consume(stack.bootstrap, url, topic, count, leads)


async def _consume(
    bootstrap: str, url: str, topic: str, count: int, leads: int
) -> tuple[float, dict[str, float]]:
    producer = make_producer(bootstrap, client_id="bench-scoring", send_timeout_s=30)
    await producer.start()
    records = intake_events(count, leads, topic)
    futures = [await producer.send(t, value=v, key=k, headers=h) for t, k, v, h in records]
    await asyncio.gather(*futures)
    engine = make_engine(url)
    model = default_model()
    relay = OutboxRelay(engine, orm.outbox, producer, poll_interval_s=0.2)

    async def batch(events: Sequence[Event]) -> None:
        await handlers.handle_batch(
            events, uow=ScoringUnitOfWork(engine), model=model, now=lambda: datetime.now(UTC)
        )

    try:
        elapsed = await drive_consumer(bootstrap, topic, producer, count, batch, relay, lanes=LANES)
    finally:
        await producer.stop()
        await engine.dispose()
    return count / elapsed, {"events": count, "leads": leads, "seconds": round(elapsed, 2)}


async def bench_simulation(stack: Stack, leads: int) -> tuple[float, int]:
    """Seconds to re-score ``leads`` of a 30-day window under a candidate (grade B from 40
    points instead of 50) beside where the shipped model left them, and how many changed."""
    candidate = parse(
        default_text().replace(
            "grades: {A: 70, B: 50, C: 30, D: 15}", "grades: {A: 70, B: 40, C: 30, D: 15}"
        ),
        "candidate",
    )
    since, until = T0, T0 + timedelta(days=30)
    async with scratch_database(stack.database_url, "bench_scoring_sim") as url:
        await asyncio.to_thread(upgrade, "scoring", url, orm.SCHEMA)
        engine = make_engine(url)
        try:
            await _write_inputs(engine, leads, since, until)
            settle_heap()  # as the service runs
            started = time.perf_counter()
            result = await views.what_if(engine, default_model(), candidate, since, until)
            elapsed = time.perf_counter() - started
        finally:
            await engine.dispose()
    assert len(result.leads) == leads
    return elapsed, len(result.changed)


async def _write_inputs(engine: Any, leads: int, since: datetime, until: datetime) -> None:
    """Each lead's form fill and two engagement events in the window, kept as the service keeps
    them: its timeline entries, and its profile and stage history as the shipped model left
    them (decided by the replay's own functions), written straight to the tables."""
    rnd = random.Random(13)
    model = default_model()
    step = (until - since) / leads
    entries, profiles, history = [], [], []
    for i in range(leads):
        at = since + i * step
        form = sample_form(rnd, f"sim-{i}@example{i % 300}.com", at)
        events = (
            form,
            sample_engagement(rnd, form.lead_id, at + timedelta(hours=1)),
            sample_engagement(rnd, form.lead_id, at + timedelta(days=1)),
        )
        entries += [timeline.event_entry(e) for e in events]
        kept = simulation.replay(
            simulation.LeadInputs(form.lead_id, "", "", events, NOBODY), model, since, until
        )
        assert kept.stage is not None
        profiles.append(
            (
                form.lead_id,
                form.lead.model_dump_json(),
                kept.stage.value,
                kept.fit_score,
                kept.fit_grade,
                kept.engagement_score,
            )
        )
        reasons = jsonio.dumps_str([r.model_dump() for r in kept.reasons])
        if kept.became_mql:
            history.append((form.lead_id, 1, None, "mql", "marketing", reasons, at, model.version))
        if kept.stage.value != "mql":
            last = events[-1].occurred_at
            history.append(
                (form.lead_id, 1, None, kept.stage.value, "marketing", reasons, last, model.version)
            )
    written = ("lead_id", "snapshot", "stage", "fit_score", "fit_grade", "engagement_score")
    stages = (
        "lead_id",
        "cycle",
        "from_stage",
        "to_stage",
        "actor",
        "reasons",
        "at",
        "model_version",
    )
    async with ScoringUnitOfWork(engine) as uow:
        await uow.timeline.add_many(entries)
        await copy_rows(uow.conn, orm.leads, written, profiles)
        await copy_rows(uow.conn, orm.stage_history, stages, history)
        await uow.commit()
    async with engine.connect() as conn:  # as autovacuum would soon after a load this size
        for table in (orm.timeline, orm.leads, orm.stage_history):
            await conn.execute(sa.text(f"ANALYZE {table.schema}.{table.name}"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.scoring")
    parser.add_argument("--smoke", action="store_true", help="one short run: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--leads", type=int, default=2_000)
    parser.add_argument("--simulated", type=int, default=100_000, help="leads in the what-if")
    args = parser.parse_args()
    runs, seconds, count, leads = (
        (1, 0.3, 600, 100) if args.smoke else (args.runs, 3.0, args.events, args.leads)
    )
    simulated = 2_000 if args.smoke else args.simulated
    report = Report("scoring: pure decisions and the consumer with PostgreSQL")
    pure = report.add(
        Figure(
            "pure scoring, 50-rule model",
            "evaluations/s",
            [],
            target=50_000,
            note="fit + decayed engagement (20 prior hits) + stage decision",
        )
    )
    through = report.add(
        Figure(
            "intake events through the scoring consumer",
            "events/s",
            [],
            target=2_000,
            note=f"polls of ≤500 in {LANES} lanes, relay running",
        )
    )
    what_if = report.add(
        Figure(
            f"what-if: {simulated:,} leads re-scored",
            "s",
            [],
            target=10.0,
            higher_is_better=False,
            note="30 days read, replayed under a candidate beside the stored state",
        )
    )
    for _ in range(runs):
        pure.runs.append(bench_pure(seconds))
    work = scratch_dir("bench-scoring-")
    stack = Stack(data_dir=work, durable=False, pick_free_ports=True, log_file=work / "svc.log")
    try:
        stack.start_infra()
        for _ in range(runs):
            rate, context = asyncio.run(bench_consumer(stack, count, leads))
            through.runs.append(rate)
            report.context.update(context)
        for _ in range(runs):
            elapsed, changed = asyncio.run(bench_simulation(stack, simulated))
            what_if.runs.append(elapsed)
            report.context.update(simulated=simulated, simulated_changed=changed)
    finally:
        stack.stop()
        remove_scratch(work)
    report.context.update(runs=runs, cores=machine()["cores"])
    report.finish("scoring", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
