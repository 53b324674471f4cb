"""``python -m bench.intake``: intake over HTTP from a separate process, beside a bare FastAPI
endpoint measured in the same run (the framework's ceiling on this machine).

Figures: batch events per second on one worker (target ≥ 30,000); p99 latency at a fixed
1,000 requests/s (target ≤ 25 ms); single events accepted per second with durable
acknowledgement (acks=all), beside the durable floor: a bare endpoint that only sends the body to
Kafka and waits for acks=all, which bounds any endpoint that answers after Kafka does. Single
events have no target of their own; intake grows by replicas.
Starts PostgreSQL, Kafka and intake itself unless ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``
point elsewhere.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from bench.common import (
    ROOT,
    Figure,
    Report,
    load,
    machine,
    remove_scratch,
    scratch_dir,
    wait_ready,
)
from devstack.ports import free_port
from devstack.stack import Stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.intake")
    parser.add_argument("--smoke", action="store_true", help="one short run: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    args = parser.parse_args()
    runs, duration = (1, 1.5) if args.smoke else (args.runs, args.duration)

    work = scratch_dir("bench-intake-")
    stack = Stack(
        data_dir=work,
        durable=False,
        pick_free_ports=True,
        log_file=work / "svc.log",
        extra_env={"INTAKE_RATE_LIMIT": "1000000/second", "INTAKE_LOG_LEVEL": "warning"},
    )
    bare_port = free_port()
    bare: subprocess.Popen[bytes] | None = None
    report = Report("intake: HTTP ingestion with durable acknowledgement")
    try:
        stack.start_infra()
        bare = subprocess.Popen(
            [sys.executable, "-m", "bench.intake.bare_app", str(bare_port), stack.bootstrap],
            cwd=ROOT,
        )
        stack.start_services(only=("intake",))
        stack.wait_ready()
        key = stack.api_key("bench")
        intake, ceiling_url = stack.url("intake"), f"http://127.0.0.1:{bare_port}"
        wait_ready(ceiling_url)
        ceiling = report.add(Figure("bare FastAPI endpoint (ceiling)", "req/s", []))
        floor = report.add(
            Figure(
                "bare endpoint + one acks=all send (durable floor)",
                "req/s",
                [],
                note="no work but the send",
            )
        )
        floor_ratio = report.add(Figure("durable floor / ceiling", "", []))
        single = report.add(Figure("single events accepted (acks=all)", "req/s", []))
        ratio = report.add(Figure("single events / ceiling", "", []))
        of_floor = report.add(Figure("single events / durable floor", "", []))
        p99_closed = report.add(
            Figure("single events p99, 32 clients", "ms", [], higher_is_better=False)
        )
        batch = report.add(
            Figure(
                "batch events accepted, 1 worker",
                "events/s",
                [],
                target=30_000,
                note="batches of 500, 4 clients",
            )
        )
        p99_rate = report.add(
            Figure("p99 at 1,000 req/s", "ms", [], target=25, higher_is_better=False)
        )
        p50_rate = report.add(Figure("p50 at 1,000 req/s", "ms", [], higher_is_better=False))
        for _ in range(runs):
            bare_r = load(ceiling_url, "", duration=duration, concurrency=32)
            floor_r = load(
                ceiling_url, "", path="/v1/events/durable", duration=duration, concurrency=32
            )
            ours = load(intake, key, duration=duration, concurrency=32)
            ceiling.runs.append(bare_r["rps"])
            floor.runs.append(floor_r["rps"])
            floor_ratio.runs.append(floor_r["rps"] / bare_r["rps"])
            single.runs.append(ours["rps"])
            ratio.runs.append(ours["rps"] / bare_r["rps"])
            of_floor.runs.append(ours["rps"] / floor_r["rps"])
            p99_closed.runs.append(ours["p99_ms"])
            batched = load(
                intake,
                key,
                path="/v1/events:batch",
                body="batch",
                batch_size=500,
                concurrency=4,
                duration=duration,
            )
            batch.runs.append(batched["events_per_s"])
            paced = load(intake, key, mode="rate", rate=1000, concurrency=64, duration=duration)
            p99_rate.runs.append(paced["p99_ms"])
            p50_rate.runs.append(paced["p50_ms"])
            bad = {
                k: v
                for r in (bare_r, floor_r, ours, batched, paced)
                for k, v in r["statuses"].items()
                if not k.startswith("2")
            }
            if bad:
                report.context.setdefault("non_2xx", []).append(bad)
        report.context.update(runs=runs, seconds_each=duration, cores=machine()["cores"])
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        stack.stop()
        remove_scratch(work)
    report.finish("intake", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
