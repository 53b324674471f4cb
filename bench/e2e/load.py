"""The end-to-end load generator, a process of its own: posts the seeded leads of
``bench.e2e.leads`` to intake at a fixed rate of leads per second, and prints one JSON line.

Lead ``i`` is due at ``start + i / rate``: its marketing events join the batch that is posted to
``/v1/events:batch`` every 100 ms, and its form fill is posted 200 ms after it is due (people
browse before they fill a form). Requests are started on schedule whatever the server does, so a
stalled server shows as latency and not as fewer requests. For every lead that should be routed,
the wall-clock instant of intake's ``202`` for its form is recorded: the start of its
speed-to-lead latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench.common import percentile
from bench.e2e.leads import Lead, leads

BATCH_EVERY_S = 0.1
FORM_AFTER_S = 0.2


async def run(args: argparse.Namespace) -> dict[str, Any]:
    total = int(args.rate * args.duration)
    # a random part: leads another run posted to the same Kafka and PostgreSQL (an earlier run,
    # or a stack beside this one) are not this run's, whatever the label
    story = leads(args.seed, total, run_tag=f"{args.tag}{uuid.uuid4().hex[:6]}-")
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    statuses: Counter[str] = Counter()
    accepted: dict[str, float] = {}
    latencies: list[float] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with contextlib.AsyncExitStack() as sessions:
        clients = [  # one per instance of intake, taken in turn
            await sessions.enter_async_context(
                aiohttp.ClientSession(
                    base_url=url,
                    headers=headers,
                    connector=aiohttp.TCPConnector(limit=512),
                    timeout=timeout,
                )
            )
            for url in args.url.split(",")
        ]
        turn = itertools.cycle(clients)

        async def post(path: str, body: dict[str, Any], lead: Lead | None) -> None:
            started = time.perf_counter()
            try:
                async with next(turn).post(path, data=json.dumps(body)) as resp:
                    answer = await resp.json(content_type=None)
                    statuses[f"{path} {resp.status}"] += 1
                    if resp.status == 202 and lead is not None and lead.routed:
                        accepted[answer["lead_id"]] = time.time()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                statuses[f"{path} {type(exc).__name__}"] += 1
            latencies.append(time.perf_counter() - started)

        tasks: list[asyncio.Task[None]] = []
        began = time.perf_counter()
        pending: list[dict[str, Any]] = []
        next_batch = began + BATCH_EVERY_S
        forms: list[tuple[float, Lead]] = []
        i = 0
        while i < total or forms or pending:
            now = time.perf_counter()
            while i < total and began + i / args.rate <= now:
                lead = story[i]
                pending.extend(lead.engagement)
                if lead.form is not None:
                    forms.append((began + i / args.rate + FORM_AFTER_S, lead))
                i += 1
            while forms and forms[0][0] <= now:
                _, lead = forms.pop(0)
                tasks.append(asyncio.create_task(post("/v1/forms", lead.form or {}, lead)))
            if now >= next_batch and (pending or i >= total):
                for chunk in range(0, len(pending), 500):
                    tasks.append(
                        asyncio.create_task(
                            post("/v1/events:batch", {"items": pending[chunk : chunk + 500]}, None)
                        )
                    )
                pending = []
                next_batch += BATCH_EVERY_S
            wake = [next_batch]
            if forms:
                wake.append(forms[0][0])
            if i < total:
                wake.append(began + i / args.rate)
            await asyncio.sleep(max(0.0, min(wake) - time.perf_counter()))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    ms = [x * 1000 for x in latencies]
    return {
        "leads": total,
        "routed_expected": sum(lead.routed for lead in story),
        "accepted": accepted,
        "statuses": dict(statuses),
        "seconds": round(elapsed, 3),
        "intake_p50_ms": percentile(ms, 50),
        "intake_p99_ms": percentile(ms, 99),
        "cpu_s": time.process_time(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.e2e.load")
    parser.add_argument("--url", required=True, help="intake's URL, or several, comma-separated")
    parser.add_argument("--key", required=True)
    parser.add_argument("--rate", type=float, required=True, help="leads per second")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--tag", default="", help="a label in this step's addresses")
    parser.add_argument("--out", required=True, help="file to write the JSON result to")
    args = parser.parse_args()
    result = uvloop.run(run(args))
    # a file, not stdout: a result of several hundred KB on a pipe the event loop left
    # non-blocking came back cut at 64 KB
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
