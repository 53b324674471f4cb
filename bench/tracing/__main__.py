"""``python -m bench.tracing``: what tracing costs, off and on, in one run.

The stack is started as ``bench.e2e`` starts it (the large routing configuration, the webhook
receiver in a process of its own), with an OTLP/HTTP receiver (``devstack.otlp``) in another.
Then, alternately, the services are restarted with tracing off (no ``OTEL_EXPORTER_OTLP_ENDPOINT``)
and on (every span exported to the receiver), and each time measured the same way:

* intake's single events accepted per second (32 clients, acks=all);
* end-to-end latency at 200 leads/s, intake's ``202`` to the routed webhook: p50 and p99.

The figures are each mode's median and the ratio of on to off; the runs alternate which mode
goes first, so that the machine's drift falls on both. What tracing off costs against a tree
without tracing is an A/B of two trees (``docs/benchmarks.md``), not a figure of this run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from statistics import median

import httpx

from bench.common import ROOT, Figure, Report, load, remove_scratch, scratch_dir
from bench.e2e.__main__ import RATE, Receiver, run_step, start_stack
from devstack.ports import free_port
from devstack.stack import Stack

SERVICES = ("intake", "scoring", "router", "sla-monitor")


class Collector:
    """``python -m devstack.otlp --quiet`` in a process of its own: counts what arrives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.otlp", "--quiet", "--port", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                httpx.get(f"{self.endpoint}/stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)

    def spans(self) -> int:
        return int(httpx.get(f"{self.endpoint}/stats", timeout=10).json()["spans"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def restart(stack: Stack, tracing_to: str | None) -> None:
    for name in list(stack.processes):
        stack.stop_service(name)
    stack.extra_env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    if tracing_to is not None:
        stack.extra_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = tracing_to
        stack.extra_env["OTEL_BSP_SCHEDULE_DELAY"] = "500"
    stack.start_services(SERVICES)
    stack.wait_ready()


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.tracing")
    parser.add_argument("--smoke", action="store_true", help="one short pass: proves the harness")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    args = parser.parse_args()
    runs, duration = (1, 1.0) if args.smoke else (args.runs, args.duration)

    report = Report("tracing: what OpenTelemetry costs, off and on, measured alternately")
    modes = ("off", "on")
    single = {
        m: report.add(Figure(f"intake single events accepted, tracing {m}", "req/s", []))
        for m in modes
    }
    single_ratio = report.add(Figure("intake single events, on / off", "", []))
    p50 = {
        m: report.add(
            Figure(
                f"latency p50 at {RATE:g} leads/s, tracing {m}", "ms", [], higher_is_better=False
            )
        )
        for m in modes
    }
    p99 = {
        m: report.add(
            Figure(
                f"latency p99 at {RATE:g} leads/s, tracing {m}", "ms", [], higher_is_better=False
            )
        )
        for m in modes
    }
    p99_ratio = report.add(Figure("latency p99, on / off", "", [], higher_is_better=False))
    per_lead = report.add(Figure("spans exported per routed lead", "", [], higher_is_better=False))

    work = scratch_dir("bench-tracing-")
    receiver = Receiver()
    collector = Collector()
    stack: Stack | None = None
    try:
        stack = start_stack(work, receiver, ("analytics", "console"))
        key = stack.api_key("bench-tracing")
        for r in range(runs):
            for mode in modes if r % 2 == 0 else modes[::-1]:
                restart(stack, collector.endpoint if mode == "on" else None)
                run_step(stack, key, receiver, 20, 0.5 if args.smoke else 3.0, f"w{r}{mode}")
                ours = load(stack.url("intake"), key, duration=duration, concurrency=32)
                single[mode].runs.append(ours["rps"])
                before = collector.spans()
                step = run_step(stack, key, receiver, RATE, duration, f"r{r}{mode}")
                p50[mode].runs.append(round(step.p50 * 1000, 1))
                p99[mode].runs.append(round(step.p99 * 1000, 1))
                if mode == "on":
                    time.sleep(2.0)  # the services export every half second
                    per_lead.runs.append(
                        round((collector.spans() - before) / max(step.routed, 1), 1)
                    )
            single_ratio.runs.append(round(single["on"].runs[-1] / single["off"].runs[-1], 3))
            p99_ratio.runs.append(round(p99["on"].runs[-1] / max(p99["off"].runs[-1], 0.1), 3))
        report.context.update(
            runs=runs,
            seconds_each=duration,
            exporter="OTLP/HTTP protobuf to devstack.otlp (another process), batch span processor",
            services=",".join(SERVICES),
            median_single_ratio=round(median(single_ratio.runs), 3) if single_ratio.runs else None,
        )
    finally:
        if stack is not None:
            stack.stop()
        receiver.stop()
        collector.stop()
        remove_scratch(work)
    report.finish("tracing", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
