"""``python -m bench.tracing``: what tracing costs, off and on, in one run.

The stack is started as ``bench.e2e`` starts it (the large routing configuration, the webhook
receiver in a process of its own), with an OTLP/HTTP receiver (``devstack.otlp``) in another.
Then, in turn, the services are restarted with tracing off (no ``OTEL_EXPORTER_OTLP_ENDPOINT``),
on with one lead's trace in ten kept (``parentbased_traceidratio``), and on with every span
exported to the receiver, and each time measured the same way:

* intake's single events accepted per second (32 clients, acks=all);
* end-to-end latency at 200 leads/s, intake's ``202`` to the routed webhook: p50 and p99.

The figures are each mode's median and its ratio to off; the runs alternate the modes' order,
so that the machine's drift falls on all. The receiver decodes every span in Python on the same
cores, so "on" here costs more than beside a collector on another host. What tracing off costs
against a tree without tracing is an A/B of two trees (``docs/benchmarks.md``), not a figure of
this run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import httpx

from bench.common import ROOT, Figure, Report, load
from bench.e2e.__main__ import RATE, e2e_stack, run_step
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


MODES: dict[str, dict[str, str] | None] = {
    "off": None,
    "on, 1 in 10 kept": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "on": {},
}
"""What each mode adds to the services' environment (None: no exporter at all)."""


def restart(stack: Stack, tracing_to: str, mode: dict[str, str] | None) -> None:
    for name in list(stack.processes):
        stack.stop_service(name)
    for variable in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    ):
        stack.extra_env.pop(variable, None)
    if mode is not None:
        stack.extra_env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": tracing_to,
            "OTEL_BSP_SCHEDULE_DELAY": "500",
            **mode,
        }
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
    modes = tuple(MODES)
    single = {
        m: report.add(Figure(f"intake single events accepted, tracing {m}", "req/s", []))
        for m in modes
    }
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
    single_ratio = {
        m: report.add(Figure(f"intake single events, tracing {m} / off", "", [])) for m in modes[1:]
    }
    p99_ratio = {
        m: report.add(Figure(f"latency p99, tracing {m} / off", "", [], higher_is_better=False))
        for m in modes[1:]
    }
    per_lead = report.add(
        Figure("spans exported per routed lead, tracing on", "", [], higher_is_better=False)
    )

    collector = Collector()
    try:
        with e2e_stack("bench-tracing-", ("analytics", "console")) as (stack, receiver):
            key = stack.api_key("bench-tracing")
            for r in range(runs):
                for mode in modes if r % 2 == 0 else modes[::-1]:
                    restart(stack, collector.endpoint, MODES[mode])
                    tag = f"r{r}m{modes.index(mode)}"  # it goes into the leads' addresses
                    run_step(stack, key, receiver, 20, 0.5 if args.smoke else 3.0, f"w{tag}")
                    ours = load(stack.url("intake"), key, duration=duration, concurrency=32)
                    single[mode].runs.append(ours["rps"])
                    before = collector.spans()
                    step = run_step(stack, key, receiver, RATE, duration, tag)
                    p50[mode].runs.append(round(step.p50 * 1000, 1))
                    p99[mode].runs.append(round(step.p99 * 1000, 1))
                    if mode == "on":
                        time.sleep(2.0)  # the services export every half second
                        per_lead.runs.append(
                            round((collector.spans() - before) / max(step.routed, 1), 1)
                        )
                for mode in modes[1:]:
                    single_ratio[mode].runs.append(
                        round(single[mode].runs[-1] / single["off"].runs[-1], 3)
                    )
                    p99_ratio[mode].runs.append(
                        round(p99[mode].runs[-1] / max(p99["off"].runs[-1], 0.1), 3)
                    )
    finally:
        collector.stop()
    report.context.update(
        runs=runs,
        seconds_each=duration,
        exporter="OTLP/HTTP protobuf to devstack.otlp (another process), batch span processor",
        services=",".join(SERVICES),
    )
    report.finish("tracing", smoke=args.smoke)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
