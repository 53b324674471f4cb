"""A load generator for intake, run as its own process so it does not share a loop with the
server: ``python -m bench.intake.load --url ... --mode closed|rate ...``; prints one JSON line.

Closed mode: ``concurrency`` clients send back to back (throughput). Rate mode: requests are
started on a fixed schedule and latency is counted from the scheduled time, so a stalled server
shows as latency rather than as fewer requests (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter

import aiohttp
import uvloop

from bench.common import percentile

ENGAGEMENTS = [
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "ad_click",
    "product_signup",
]
DOMAINS = [
    "northwind.example",
    "contoso.example",
    "initech.example",
    "gmail.com",
    "globex.example",
    "umbrella.example",
    "outlook.com",
    "acme.example",
]


def event(rng: random.Random, n: int) -> dict[str, object]:
    kind = rng.choice(ENGAGEMENTS)
    return {
        "email": f"user{n}@{rng.choice(DOMAINS)}",
        "engagement_type": kind,
        "url": f"https://www.{rng.choice(DOMAINS)}/{kind}/{rng.randint(1, 500)}",
        "campaign": rng.choice(["q4-demo", "nov-newsletter", "webinar-routing", None]),
        "properties": {"seconds": rng.randint(1, 600), "utm_source": "bench"},
        "source_event_id": f"bench-{n}-{rng.getrandbits(48):x}",
    }


def bodies(kind: str, count: int, batch_size: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    if kind == "batch":
        return [
            json.dumps(
                {"items": [event(rng, i * batch_size + j) for j in range(batch_size)]}
            ).encode()
            for i in range(count)
        ]
    return [json.dumps(event(rng, i)).encode() for i in range(count)]


async def run(args: argparse.Namespace) -> dict[str, object]:
    pool = bodies(args.body, 64 if args.body == "batch" else 4096, args.batch_size, args.seed)
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    async with aiohttp.ClientSession(
        base_url=args.url,
        headers=headers,
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=10),
    ) as client:

        async def one(body: bytes, started: float) -> None:
            try:
                async with client.post(args.path, data=body) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                statuses[0] += 1
            latencies.append(time.perf_counter() - started)

        # warm up connections and the server's code paths
        await asyncio.gather(
            *(
                one(pool[i % len(pool)], time.perf_counter())
                for i in range(min(args.concurrency, 32))
            )
        )
        latencies.clear()
        statuses.clear()
        began = time.perf_counter()
        deadline = began + args.duration
        if args.mode == "closed":

            async def worker(w: int) -> None:
                i = w
                while time.perf_counter() < deadline:
                    await one(pool[i % len(pool)], time.perf_counter())
                    i += args.concurrency

            await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
        else:
            tasks = []
            total = int(args.rate * args.duration)
            for i in range(total):
                at = began + i / args.rate
                delay = at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(pool[i % len(pool)], at)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    per_request = args.batch_size if args.body == "batch" else 1
    ms = [x * 1000 for x in latencies]
    return {
        "requests": sum(statuses.values()),
        "ok": ok,
        "statuses": dict(statuses),
        "seconds": round(elapsed, 3),
        "rps": ok / elapsed,
        "events_per_s": ok * per_request / elapsed,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/v1/events")
    parser.add_argument("--key", default="")
    parser.add_argument("--mode", choices=["closed", "rate"], default="closed")
    parser.add_argument("--body", choices=["single", "batch"], default="single")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
