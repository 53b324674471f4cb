"""``python -m bench.beside``: what a service off the lead's way (analytics) costs the
lead's path, in one stack.

Two stacks run one after the other differ by more than the service costs: this host's speed
moves by 2-3x between hours, and a single rate step's verdict with it. Here one stack runs, and
every measurement is taken twice back to back, with the service running and with it stopped,
in turn first, so that the host's speed moves both alike: each figure is the median over the
pairs of with / without, beside the 10 % the lead's path may lose. Before every measurement
the stack is quiet: every consumer group caught up (the service's own too, when it runs, so
that it starts a step with no backlog of the step before), and at least ``REST_S`` passed
since the measurement before ended. Without that rest, the second of a pair, which waits for
the service to stop or start, ran on a stack that had digested the step before, and the first
did not: the second came out faster whichever side it was, and a service measured first in
more pairs than second looked costlier than it is. For the same reason a run has an even
number of pairs.

The measurements are ``bench.e2e``'s: latency at 200 leads/s, and the rate stepped up until a
step fails, each side's ladder on its own (a side stops at its first failed step). Beside the
latencies, what the service costs in CPU at 200 leads/s, which moves far less from pair to pair:
the stack's CPU with it against without (everything it costs, Kafka serving its reads and
PostgreSQL writing its rows included), and its own share of the stack's CPU (its process and the
PostgreSQL server processes serving its connections).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator

import asyncpg

from bench.common import Figure, Report, wait_ready
from bench.e2e.__main__ import RATE, Step, e2e_stack, run_step
from bench.e2e.trace import cpu_seconds
from devstack.stack import SERVICES, Stack
from leadrelay_shared.kafka import group_lags

STEPS = (400, 450, 500, 550, 600, 650, 700, 750, 800, 900, 1000)
QUIET_S = 60.0
REST_S = 10.0


async def behind(bootstrap: str, groups: set[str] | None, stopped: str | None) -> int:
    """How many events ``groups`` (none: every group) have still to read, less ``stopped``'s."""
    return sum(
        g.lag
        for g in await group_lags(bootstrap)
        if (groups is None or g.group in groups) and g.group != stopped
    )


def quiet(stack: Stack, stopped: str | None) -> None:
    """Wait until the stack's consumer groups (those its environment names, or every group on
    its own Kafka) have caught up, but the group ``stopped``, or ``QUIET_S`` passed."""
    named = {v for k, v in stack.extra_env.items() if k.endswith("_CONSUMER_GROUP")} or None
    deadline = time.monotonic() + QUIET_S
    while (left := asyncio.run(behind(stack.bootstrap, named, stopped))) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    if left:
        print(f"  still {left} events behind after {QUIET_S:.0f} s", flush=True)


class Beside:
    """The service under test, started and stopped in a running stack."""

    def __init__(self, stack: Stack, service: str, *, settle: bool) -> None:
        self.stack, self.service, self.settle = stack, service, settle
        self.ended = time.monotonic()  # when the last measurement ended
        self.spec = next(s for s in SERVICES if s.name == service)
        prefix = self.spec.env_prefix
        self.group = stack.extra_env.get(f"{prefix}CONSUMER_GROUP", f"leadrelay-{service}")

    async def backends(self) -> dict[int, str]:
        """The PostgreSQL server processes serving the service's connections, named as
        ``cpu_seconds`` names its process."""
        conn = await asyncpg.connect(self.stack.database_url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                f"leadrelay-{self.service}",
            )
        finally:
            await conn.close()
        return {r["pid"]: self.spec.module for r in rows}

    def set(self, running: bool) -> None:
        if running and self.service not in self.stack.processes:
            self.stack.start_service(self.spec, self.stack.ports[self.service])
            wait_ready(self.stack.url(self.service), timeout_s=90)
        elif not running:
            self.stack.stop_service(self.service)
        if self.settle:
            quiet(self.stack, None if running else self.group)
            time.sleep(max(0.0, self.ended + REST_S - time.monotonic()))


def turns(i: int) -> Iterator[bool]:
    """With, then without; the other way round every other time."""
    return iter((True, False) if i % 2 == 0 else (False, True))


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.beside")
    parser.add_argument("--smoke", action="store_true", help="one short pass: proves the harness")
    parser.add_argument("--service", default="analytics", help="the service off the lead's way")
    parser.add_argument(
        "--pairs", type=int, default=6, help="pairs at 200 leads/s (even: each side first as often)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at 200 leads/s")
    parser.add_argument("--step", type=float, default=10.0, help="seconds per rate step")
    parser.add_argument("--steps", default=",".join(map(str, STEPS)), help="leads/s, rising")
    args = parser.parse_args()
    smoke = args.smoke
    pairs = 1 if smoke else args.pairs
    duration, step_s = (1.0, 1.0) if smoke else (args.duration, args.step)
    steps = (50,) if smoke else tuple(int(s) for s in args.steps.split(",") if s.strip())
    name = args.service

    report = Report(f"the lead's path with {name} beside it, against without (one stack)")
    figs = {
        (k, on): report.add(
            Figure(
                f"latency {k} at {RATE:g} leads/s, {name} {'running' if on else 'stopped'}",
                "ms",
                [],
                higher_is_better=False,
            )
        )
        for k in ("p50", "p99")
        for on in (True, False)
    }
    ratios = {
        k: report.add(
            Figure(
                f"latency {k} with / without {name}",
                "×",
                [],
                target=1.10,
                higher_is_better=False,
                note="median of the pairs' ratios",
            )
        )
        for k in ("p50", "p99")
    }
    cpu_ratio = report.add(
        Figure(
            f"the stack's CPU at {RATE:g} leads/s with / without {name}",
            "×",
            [],
            higher_is_better=False,
            note="median of the pairs' ratios; Kafka and PostgreSQL included",
        )
    )
    share = report.add(
        Figure(
            f"share of the stack's CPU at {RATE:g} leads/s used by {name}",
            "%",
            [],
            higher_is_better=False,
            note="its process and its PostgreSQL server processes; median of the pairs",
        )
    )
    best = {on: 0 for on in (True, False)}
    sustained = {
        on: report.add(
            Figure(
                f"highest sustained rate with p99 < 1 s, {name} {'running' if on else 'stopped'}",
                "leads/s",
                [],
                note="steps " + ", ".join(map(str, steps)),
            )
        )
        for on in (True, False)
    }
    rate_ratio = report.add(
        Figure(f"highest sustained rate with / without {name}", "×", [], target=0.90)
    )
    lost = 0

    with e2e_stack("bench-beside-") as (stack, receiver):
        # a smoke run shares its Kafka's topics with the other benchmarks' stacks: their
        # traffic keeps its groups behind, and a smoke measures nothing
        beside = Beside(stack, name, settle=not smoke)
        key = stack.api_key("bench-beside")
        run_step(stack, key, receiver, 20, 0.5 if smoke else 3.0, "warm")
        beside.ended = time.monotonic()
        for i in range(pairs):
            got: dict[bool, Step] = {}
            used: dict[bool, dict[str, float]] = {}
            for on in turns(i):
                beside.set(on)
                # its pool's connections, and any it opens during the step
                serving = asyncio.run(beside.backends()) if on else {}
                before = cpu_seconds(serving)
                got[on] = run_step(stack, key, receiver, RATE, duration, f"p{i}{on:d}")
                beside.ended = time.monotonic()
                serving |= asyncio.run(beside.backends()) if on else {}
                after = cpu_seconds(serving)
                used[on] = {k: v - before.get(k, 0.0) for k, v in after.items()}
                lost += got[on].missing
            stack_cpu = {on: sum(used[on].values()) for on in (True, False)}
            cpu_ratio.runs.append(ratio(stack_cpu[True], stack_cpu[False]))
            share.runs.append(
                round(100 * used[True].get(beside.spec.module, 0.0) / stack_cpu[True], 1)
                if stack_cpu[True]
                else float("nan")
            )
            for k in ("p50", "p99"):
                for on in (True, False):
                    figs[k, on].runs.append(round(getattr(got[on], k) * 1000, 1))
                ratios[k].runs.append(ratio(getattr(got[True], k), getattr(got[False], k)))
            print(
                f"  pair {i + 1}: p50 {got[True].p50 * 1000:,.0f} / {got[False].p50 * 1000:,.0f}"
                f" ms, p99 {got[True].p99 * 1000:,.0f} / {got[False].p99 * 1000:,.0f} ms,"
                f" stack CPU {stack_cpu[True]:.1f} / {stack_cpu[False]:.1f} s"
                f" ({name} {share.runs[-1]:g} %)",
                flush=True,
            )
        climbing = {True, False}
        for j, rate in enumerate(steps):
            for on in turns(j):
                if on not in climbing:
                    continue
                beside.set(on)
                s = run_step(stack, key, receiver, rate, step_s, f"s{rate}{on:d}")
                beside.ended = time.monotonic()
                lost += s.missing if smoke else 0  # a real run steps up until leads are late
                print(
                    f"  step {rate}/s, {name} {'running' if on else 'stopped'}: "
                    f"p99 {s.p99 * 1000:,.0f} ms, missing {s.missing}, errors {s.errors}",
                    flush=True,
                )
                if s.ok:
                    best[on] = rate
                else:
                    climbing.discard(on)
            if not climbing:
                break
        for on in (True, False):
            sustained[on].runs.append(best[on])
        rate_ratio.runs.append(ratio(best[True], best[False]))
    report.context.update(
        pairs=pairs,
        duration_s=duration,
        step_s=step_s,
        order="with first in even pairs and steps, without first in odd ones",
        rest_s=0.0 if smoke else REST_S,
    )
    report.finish("beside", smoke=smoke)
    if smoke and lost:
        print(f"{lost} leads accepted by intake never reached the receiver", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
