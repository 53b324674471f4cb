"""``python -m bench.e2e``: speed to lead, end to end, beside the ceilings of the parts we use.

The stack is started as ``make run`` starts it (PostgreSQL and Kafka embedded and durable,
unless ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` point elsewhere; the five services as
processes, or all but those named by ``--without``), with router on a large generated
configuration (1,000 reps, 10,000 accounts, 500 territory rules) whose webhook points at a
receiver in a process of its own. A load generator,
another process, posts the seeded leads of ``bench.e2e.leads`` at fixed rates.

Figures:

* latency from intake's ``202`` for a lead's form fill to its routed ``lead.assigned`` webhook
  at the receiver: p50, p95, p99 at 200 leads/s (target p99 ≤ 250 ms);
* the highest rate, stepping up, at which p99 stays under 1 s and every lead arrives
  (target ≥ 500 leads/s);
* the same fixed-rate run with 10,000 and 1,000,000 leads already stored (seeded directly);
* ceilings measured in the same run: Kafka's ``ProducerPerformance`` and ``EndToEndLatency``
  tools (from the Kafka jars) on the same broker, and a bare FastAPI endpoint; our figures are
  printed as a ratio of the ceiling beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import (
    ROOT,
    SCRATCH_ENV,
    Figure,
    Report,
    new_database,
    percentile,
    remove_scratch,
    scratch_dir,
    wait_ready,
)
from bench.common import load as intake_load
from bench.e2e import seed
from bench.router.__main__ import large_document
from devstack import kafka
from devstack.ports import free_port
from devstack.stack import SERVICES, Stack
from leadrelay_shared.kafka import ensure_topics, start_group_at_end
from scoring.settings import timeline_group

RATE = 200.0
STEPS = (50, 100, 150, 200, 300, 400, 500, 700, 1000)
DRAIN_S = 15.0


@dataclass
class Step:
    rate: float
    p50: float
    p95: float
    p99: float
    missing: int
    routed: int
    intake_p99_ms: float
    errors: int
    failed: dict[str, int] = field(default_factory=dict)
    """Intake's answers other than 200 and 202, by path and status (or client error), so a
    failed step says whether intake refused (503: Kafka too slow to acknowledge) or timed out."""

    @property
    def ok(self) -> bool:
        return self.p99 < 1.0 and self.missing == 0 and self.errors == 0


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e.receiver", str(self.port)], cwd=ROOT
        )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_ready(self.url)

    def arrivals(self) -> dict[str, float]:
        return dict(httpx.get(f"{self.url}/received", timeout=30).json()["arrivals"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def run_step(
    stack: Stack, key: str, receiver: Receiver, rate: float, duration: float, tag: str
) -> Step:
    """Post leads at ``rate`` for ``duration`` s, wait for their webhooks, measure latency."""
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.e2e.load",
                "--url",
                ",".join(stack.url(n) for n in stack.instances["intake"]),
                "--key",
                key,
                "--rate",
                str(rate),
                "--duration",
                str(duration),
                "--tag",
                tag,
                "--out",
                file.name,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if out.returncode != 0:
            raise RuntimeError(f"the load generator failed:\n{out.stderr[-3000:]}")
        result = json.loads(Path(file.name).read_text())
    accepted: dict[str, float] = result["accepted"]
    deadline = time.monotonic() + DRAIN_S
    while True:
        arrivals = receiver.arrivals()
        missing = [lead for lead in accepted if lead not in arrivals]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    latencies = [arrivals[lead] - at for lead, at in accepted.items() if lead in arrivals]
    latencies += [float("inf")] * len(missing)
    failed = {k: n for k, n in result["statuses"].items() if not k.endswith((" 202", " 200"))}
    errors = sum(failed.values())
    return Step(
        rate,
        percentile(latencies, 50),
        percentile(latencies, 95),
        percentile(latencies, 99),
        len(missing),
        len(accepted),
        result["intake_p99_ms"],
        errors,
        failed,
    )


def kafka_ceilings(bootstrap: str, records: int) -> dict[str, float]:
    """Kafka's own tools on the same broker: producer records/s (acks=all, 500-byte records)
    and the end-to-end produce-to-consume latency of one record at a time."""
    cp = kafka.classpath()
    topic = f"bench-perf-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "KAFKA_HEAP_OPTS": "-Xmx512m"}
    # the broker does not create topics on first use (as in production)
    asyncio.run(ensure_topics(bootstrap, {topic: 6, topic + "-e2e": 1}))
    perf = subprocess.run(
        [
            "java",
            "-cp",
            cp,
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            "500",
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
            "linger.ms=5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    last = [line for line in perf.stdout.splitlines() if "records sent" in line][-1]
    rate = float(re.search(r"([\d.]+) records/sec", last).group(1))  # type: ignore[union-attr]
    e2e = subprocess.run(
        [
            "java",
            "-cp",
            cp,
            "org.apache.kafka.tools.EndToEndLatency",
            bootstrap,
            topic + "-e2e",
            str(max(50, records // 100)),
            "all",
            "500",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    text = e2e.stdout
    avg = float(re.search(r"Avg latency: ([\d.]+) ms", text).group(1))  # type: ignore[union-attr]
    pct = re.search(r"Percentiles: 50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", text)
    assert pct is not None, text[-2000:]
    return {
        "producer_records_s": rate,
        "e2e_avg_ms": avg,
        "e2e_p50_ms": float(pct.group(1)),
        "e2e_p99_ms": float(pct.group(2)),
    }


def fastapi_ceiling(duration: float) -> float:
    port = free_port()
    bare = subprocess.Popen([sys.executable, "-m", "bench.intake.bare_app", str(port)], cwd=ROOT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        return float(intake_load(url, "", duration=duration, concurrency=32)["rps"])
    finally:
        bare.terminate()
        bare.wait()


async def start_groups_at_end(bootstrap: str, groups: Iterable[str]) -> None:
    await ensure_topics(bootstrap)
    for group in groups:
        await start_group_at_end(bootstrap, group)


def start_stack(
    work: Path,
    receiver: Receiver,
    without: tuple[str, ...] = (),
    *,
    brokers: int = 1,
    replicas: int = 1,
) -> Stack:
    routing = work / "routing.yaml"
    routing.write_text(
        yaml.safe_dump(large_document(webhook_url=f"{receiver.url}/hooks/crm"), sort_keys=False)
    )
    suffix = uuid.uuid4().hex[:6]
    external = bool(os.environ.get("DATABASE_URL") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    database_url = ""
    if os.environ.get("DATABASE_URL") and os.environ.get(SCRATCH_ENV):
        # a server shared with other stacks at once (bench --smoke): a database of our own, or
        # their services would claim our leads' events in the same tables before ours do (it
        # goes when the smoke removes that server)
        database_url = asyncio.run(new_database(os.environ["DATABASE_URL"], "bench_e2e"))
    # Every routed lead starts an SLA clock; the deadline is far enough that no alert fires
    # during the run, whatever the time of day (alerts are bench/sla's subject).
    policies = work / "sla.yaml"
    policies.write_text(
        "version: bench-e2e\ncalendars: [{id: always, always: true}]\n"
        "policies: [{id: first-touch, calendar: always, first_touch: 24h}]\n"
    )
    env = {
        "ROUTER_CONFIG_PATH": str(routing),
        "SLA_POLICIES_PATH": str(policies),
        "INTAKE_RATE_LIMIT": "1000000/second",
    }
    for prefix in ("INTAKE", "SCORING", "ROUTER", "SLA", "ANALYTICS"):
        env[f"{prefix}_LOG_LEVEL"] = "warning"
    groups = (
        {
            prefix: f"bench-e2e-{prefix.lower()}-{suffix}"
            for prefix in ("SCORING", "ROUTER", "SLA", "ANALYTICS")
        }
        if external
        else {}
    )
    for prefix, group in groups.items():  # a stack that has seen other traffic
        env[f"{prefix}_CONSUMER_GROUP"] = group
    stack = Stack(
        data_dir=work,
        durable=True,
        pick_free_ports=True,
        log_file=work / "services.log",
        extra_env=env,
        brokers=brokers,
        replicas=replicas,
        database_url=database_url,
    )
    stack.start_infra()
    if groups:  # groups of our own that read from now on, not the others' leads
        asyncio.run(
            start_groups_at_end(
                stack.bootstrap, [*groups.values(), timeline_group(groups["SCORING"])]
            )
        )
    stack.start_services(tuple(s.name for s in SERVICES if s.name not in without))
    stack.wait_ready()
    return stack


@contextlib.contextmanager
def e2e_stack(
    prefix: str, without: tuple[str, ...] = (), *, brokers: int = 1, replicas: int = 1
) -> Iterator[tuple[Stack, Receiver]]:
    """``start_stack`` in a scratch folder named from ``prefix``, with its webhook receiver: on
    the way out, a start that failed too, both are stopped and the folder removed."""
    work = scratch_dir(prefix)
    receiver = Receiver()
    stack: Stack | None = None
    try:
        stack = start_stack(work, receiver, without, brokers=brokers, replicas=replicas)
        yield stack, receiver
    finally:
        if stack is not None:
            stack.stop()
        receiver.stop()
        remove_scratch(work)


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.e2e")
    parser.add_argument("--smoke", action="store_true", help="one short pass: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at 200 leads/s")
    parser.add_argument("--step", type=float, default=10.0, help="seconds per rate step")
    parser.add_argument(
        "--steps",
        default=",".join(map(str, STEPS)),
        help="the rates stepped up through (comma-separated leads/s); finer steps near the "
        "highest sustained rate tell two stacks apart by less than a default step",
    )
    parser.add_argument(
        "--scale",
        default="10000,1000000",
        help="stored leads to seed before the scale runs (comma-separated)",
    )
    parser.add_argument("--brokers", type=int, default=1, help="Kafka nodes (3: a cluster)")
    parser.add_argument("--replicas", type=int, default=1, help="instances of each service")
    parser.add_argument(
        "--without",
        default="",
        help="services not to start (comma-separated), e.g. analytics, to compare",
    )
    args = parser.parse_args()
    without = tuple(s.strip() for s in args.without.split(",") if s.strip())
    smoke = args.smoke
    runs = 1 if smoke else args.runs
    duration, step_s = (1.0, 1.0) if smoke else (args.duration, args.step)
    steps = (50,) if smoke else tuple(int(s) for s in args.steps.split(",") if s.strip())
    scales = [1000] if smoke else [int(s) for s in args.scale.split(",") if s.strip()]

    report = Report("end to end: speed to lead, form fill to routed webhook")
    p50 = report.add(
        Figure(
            f"latency p50 at {RATE:g} leads/s",
            "ms",
            [],
            higher_is_better=False,
            note="intake 202 → webhook received",
        )
    )
    p95 = report.add(Figure(f"latency p95 at {RATE:g} leads/s", "ms", [], higher_is_better=False))
    p99 = report.add(
        Figure(f"latency p99 at {RATE:g} leads/s", "ms", [], target=250, higher_is_better=False)
    )
    sustained = report.add(
        Figure(
            "highest sustained rate with p99 < 1 s",
            "leads/s",
            [],
            target=500,
            note="steps " + ", ".join(map(str, steps)),
        )
    )
    k_rate = report.add(
        Figure("ceiling: Kafka producer-perf-test (acks=all, 500 B)", "records/s", [])
    )
    k_p99 = report.add(
        Figure("ceiling: Kafka end-to-end latency tool p99", "ms", [], higher_is_better=False)
    )
    k_p50 = report.add(
        Figure("ceiling: Kafka end-to-end latency tool p50", "ms", [], higher_is_better=False)
    )
    bare = report.add(Figure("ceiling: bare FastAPI endpoint", "req/s", []))
    p99_ratio = report.add(
        Figure("our p99 / Kafka end-to-end p99", "×", [], higher_is_better=False)
    )
    rate_ratio = report.add(Figure("sustained leads/s / Kafka producer records/s", "", []))
    bare_ratio = report.add(Figure("sustained leads/s / bare FastAPI req/s", "", []))
    scale_figs = {
        n: report.add(
            Figure(
                f"latency p99 at {RATE:g} leads/s, {n:,} leads stored",
                "ms",
                [],
                higher_is_better=False,
            )
        )
        for n in scales
    }
    steps_seen: list[list[dict[str, Any]]] = []
    lost = 0  # leads accepted that never arrived (a missing lead fails a smoke run)

    with e2e_stack("bench-e2e-", without, brokers=args.brokers, replicas=args.replicas) as (
        stack,
        receiver,
    ):
        key = stack.api_key("bench-e2e")
        run_step(stack, key, receiver, 20, 0.5 if smoke else 3.0, "warm")  # connections, caches
        for r in range(runs):
            fixed = run_step(stack, key, receiver, RATE, duration, f"r{r}")
            lost += fixed.missing
            p50.runs.append(round(fixed.p50 * 1000, 1))
            p95.runs.append(round(fixed.p95 * 1000, 1))
            p99.runs.append(round(fixed.p99 * 1000, 1))
            best, seen = 0.0, []
            for rate in steps:
                s = run_step(stack, key, receiver, rate, step_s, f"r{r}s{rate}")
                lost += s.missing if smoke else 0  # a real run steps up until leads are late
                seen.append({**s.__dict__, "ok": s.ok})
                print(
                    f"  run {r + 1} step {rate}/s: p99 {s.p99 * 1000:,.0f} ms, "
                    f"missing {s.missing}, errors {s.errors} {s.failed or ''}",
                    flush=True,
                )
                if not s.ok:
                    break
                best = rate
            steps_seen.append(seen)
            sustained.runs.append(best)
            ceilings = kafka_ceilings(stack.bootstrap, 1_000 if smoke else 500_000)
            k_rate.runs.append(round(ceilings["producer_records_s"]))
            k_p99.runs.append(ceilings["e2e_p99_ms"])
            k_p50.runs.append(ceilings["e2e_p50_ms"])
            bare.runs.append(round(fastapi_ceiling(0.5 if smoke else 8.0)))
            p99_ratio.runs.append(round(p99.runs[-1] / max(k_p99.runs[-1], 0.001), 1))
            rate_ratio.runs.append(round(best / k_rate.runs[-1], 4))
            bare_ratio.runs.append(round(best / bare.runs[-1], 3))
        if stack.pg_server is None and not os.environ.get(SCRATCH_ENV):
            print("scale runs skipped: DATABASE_URL points at a database we will not fill")
        else:
            stored = 0
            for n in scales:
                asyncio.run(seed.seed(stack.database_url, stored, n))
                stored = n
                for r in range(runs):
                    s = run_step(stack, key, receiver, RATE, duration, f"n{n}r{r}")
                    lost += s.missing
                    scale_figs[n].runs.append(round(s.p99 * 1000, 1))
    report.context.update(
        runs=runs,
        duration_s=duration,
        step_s=step_s,
        steps=steps_seen,
        routing="1,000 reps, 10,000 accounts, 500 territories",
        scoring="shipped model",
        postgres="durable (as make run)",
        kafka_nodes=args.brokers,
        instances_per_service=args.replicas,
    )
    report.finish("e2e" if args.brokers == args.replicas == 1 else "cluster", smoke=smoke)
    if smoke and lost:  # the smoke proves the harness: every lead it posts must arrive
        print(f"{lost} leads accepted by intake never reached the receiver", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
