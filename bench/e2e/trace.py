"""``python -m bench.e2e.trace``: where a routed lead's time goes, hop by hop, and what each
process of the stack burns meanwhile. A diagnostic beside ``bench.e2e``, not a figure of the
report.

The stack is started as ``bench.e2e`` starts it, warmed up (the JVM compiles Kafka's hot paths in
the first minute), then one fixed-rate step runs. Each routed lead's path is read back from the
topics afterwards:

* ``202``: the load generator's instant of intake's answer;
* scoring's batch: the ``occurred_at`` of the lead's ``stage.changed`` to MQL (scoring stamps a
  batch's events with the instant it started deciding it);
* scoring's publish: that record's Kafka timestamp (set when the outbox relay sent it);
* router's batch: the ``occurred_at`` of the lead's ``lead.assigned``;
* webhook: the receiver's arrival.

Clocks are the same machine's, so the hops add up to the end-to-end latency. CPU is read from
``/proc`` for every process of the stack over the step, in cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from bench.common import ROOT, percentile
from bench.e2e.__main__ import e2e_stack
from leadrelay_shared.contracts import LeadAssigned, StageChanged, Topics

HOPS = ("202", "scoring decides", "scoring publishes", "router decides", "webhook arrives")
PROCESSES = (
    "intake",
    "scoring",
    "router",
    "sla_monitor",
    "analytics",
    "console",
    "bench.e2e.receiver",
)


def cpu_seconds(backends: Mapping[int, str] | None = None) -> dict[str, float]:
    """CPU seconds so far of each process of the stack, by name (Kafka, PostgreSQL, services);
    ``backends`` names some PostgreSQL server processes apart (by pid), such as a service's."""
    tick = os.sysconf("SC_CLK_TCK")
    backends = backends or {}
    out: dict[str, float] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) in backends:
            name = backends[int(pid)]
        elif "java" in cmd and "kafka.Kafka" in cmd:
            name = "kafka"
        elif "postgres" in cmd.split(" ", 1)[0]:
            name = "postgres"
        else:
            name = next((p for p in PROCESSES if f"-m {p}" in cmd), "")
        if name:
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def read_topic(bootstrap: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=1500):
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


def stamps(
    records: list[ConsumerRecord[bytes, bytes]],
    event_type: str,
    wanted: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> tuple[dict[str, float], dict[str, float]]:
    """Each lead's first event of ``event_type`` that ``wanted`` accepts: its ``occurred_at``
    and its record's timestamp."""
    decided: dict[str, float] = {}
    published: dict[str, float] = {}
    for r in records:
        if (
            r.key is None
            or r.value is None
            or dict(r.headers).get("ce_type") != event_type.encode()
        ):
            continue
        data = json.loads(r.value)
        if not wanted(data):
            continue
        lead = r.key.decode()
        at = datetime.fromisoformat(data["occurred_at"].replace("Z", "+00:00")).timestamp()
        decided.setdefault(lead, at)
        published.setdefault(lead, r.timestamp / 1000)
    return decided, published


def post_leads(url: str, key: str, rate: float, seconds: float, tag: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.e2e.load",
                "--url",
                url,
                "--key",
                key,
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--tag",
                tag,
                "--out",
                file.name,
            ],
            cwd=ROOT,
            check=True,
        )
        return dict(json.loads(Path(file.name).read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.e2e.trace")
    parser.add_argument("--rate", type=float, default=200.0, help="leads per second")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of the step")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds at the same rate")
    parser.add_argument("--without", default="", help="services not to start (comma-separated)")
    parser.add_argument("--brokers", type=int, default=1, help="Kafka nodes (3: a cluster)")
    parser.add_argument("--replicas", type=int, default=1, help="instances of each service")
    args = parser.parse_args()
    without = tuple(s.strip() for s in args.without.split(",") if s.strip())
    with e2e_stack("bench-e2e-trace-", without, brokers=args.brokers, replicas=args.replicas) as (
        stack,
        receiver,
    ):
        key = stack.api_key("trace")
        post_leads(stack.url("intake"), key, args.rate, args.warmup, "warmup")
        time.sleep(3)
        before, started = cpu_seconds(), time.monotonic()
        result = post_leads(stack.url("intake"), key, args.rate, args.duration, "trace")
        after, elapsed = cpu_seconds(), time.monotonic() - started
        time.sleep(8)  # the last leads reach the receiver
        arrivals = receiver.arrivals()
        scored = asyncio.run(read_topic(stack.bootstrap, Topics.SCORING))
        routed = asyncio.run(read_topic(stack.bootstrap, Topics.ROUTING))
    mql, mql_sent = stamps(scored, StageChanged.event_type, lambda d: d["to_stage"] == "mql")
    assigned, _ = stamps(routed, LeadAssigned.event_type)
    path = (result["accepted"], mql, mql_sent, assigned, arrivals)
    leads = [lead for lead in result["accepted"] if all(lead in stage for stage in path)]
    print(
        f"{args.rate:g} leads/s for {args.duration:g} s: {len(leads)} of "
        f"{len(result['accepted'])} routed leads traced; intake p99 "
        f"{result['intake_p99_ms']:.0f} ms; answers {result['statuses']}"
    )
    print(f"{'hop':<40} {'p50':>7} {'p95':>7} {'p99':>7}  ms")
    for i in range(len(HOPS) - 1):
        ms = [(path[i + 1][lead] - path[i][lead]) * 1000 for lead in leads]
        print(
            f"{HOPS[i] + ' → ' + HOPS[i + 1]:<40} {percentile(ms, 50):7.0f} "
            f"{percentile(ms, 95):7.0f} {percentile(ms, 99):7.0f}"
        )
    ms = [(arrivals[lead] - result["accepted"][lead]) * 1000 for lead in leads]
    print(
        f"{'end to end':<40} {percentile(ms, 50):7.0f} {percentile(ms, 95):7.0f} "
        f"{percentile(ms, 99):7.0f}"
    )
    cores = {name: (after.get(name, 0.0) - before.get(name, 0.0)) / elapsed for name in after}
    print(
        "cores used: "
        + ", ".join(f"{n} {c:.2f}" for n, c in sorted(cores.items()))
        + f"; all {sum(cores.values()):.2f} of {os.cpu_count()}, and the load generator "
        f"{result['cpu_s'] / elapsed:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
