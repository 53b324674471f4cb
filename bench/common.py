"""What every benchmark shares: latency statistics, the machine's description, and a report that
prints each figure beside its target. Benchmarks are not tests: they never fail the build."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


KEEP_SCRATCH_ENV = "LEADRELAY_KEEP_SCRATCH"


def scratch_dir(prefix: str) -> Path:
    """A fresh folder for one benchmark's Kafka log and PostgreSQL cluster (``remove_scratch``
    deletes it when the benchmark is done)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def remove_scratch(folder: Path) -> None:
    """Delete a benchmark's data once its servers are stopped: an end-to-end run with its million
    stored leads leaves about 5 GB, and a day of runs filled this machine's disk. Set
    ``LEADRELAY_KEEP_SCRATCH=1`` to keep it for a look."""
    if os.environ.get(KEEP_SCRATCH_ENV):
        print(f"kept {folder} ({KEEP_SCRATCH_ENV} is set)", flush=True)
        return
    shutil.rmtree(folder, ignore_errors=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Figure:
    """One measured figure: the median of its runs, with min and max, and its target."""

    name: str
    unit: str
    runs: list[float]
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    @property
    def value(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.runs:
            return None
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    def row(self) -> str:
        target = (
            ""
            if self.target is None
            else f"{'≥' if self.higher_is_better else '≤'} {self.target:,.6g}"
        )
        verdict = {True: "met", False: "NOT met", None: ""}[self.met]
        spread = f"[{min(self.runs):,.6g} … {max(self.runs):,.6g}]" if len(self.runs) > 1 else ""
        return (
            f"| {self.name} | {self.value:,.6g} {self.unit} | {spread} | {target} | {verdict} "
            f"| {self.note} |"
        )


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def markdown(self) -> str:
        lines = [
            f"## {self.title}",
            "",
            "| figure | median | [min … max] | target | | note |",
            "|---|---|---|---|---|---|",
        ]
        lines += [f.row() for f in self.figures]
        if self.context:
            lines += ["", "context: " + ", ".join(f"{k}={v}" for k, v in self.context.items())]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "context": self.context,
            "figures": [{**asdict(f), "value": f.value, "met": f.met} for f in self.figures],
        }

    def save(self, name: str) -> Path:
        folder = results_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        path = folder / f"{name}-{stamp}.json"
        path.write_text(json.dumps({"machine": machine(), **self.to_json()}, indent=2))
        return path

    def finish(self, name: str, *, smoke: bool) -> None:
        """Print the figures; save them, unless this was a smoke run outside ``python -m bench``
        (which points ``LEADRELAY_BENCH_RESULTS`` at the folder its report is built from)."""
        print(self.markdown())
        if not smoke or RESULTS_ENV in os.environ:
            print(f"saved {self.save(name)}")


RESULTS_ENV = "LEADRELAY_BENCH_RESULTS"
SCRATCH_ENV = "LEADRELAY_BENCH_SCRATCH_INFRA"
"""Set by ``bench --smoke`` when it started the PostgreSQL and Kafka it hands the benchmarks
(through ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``): they may be filled, as their own."""


def results_dir() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or RESULTS)


def machine() -> dict[str, Any]:
    def run(*cmd: str) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    mem_kib = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        mem_kib = int(meminfo.read_text().split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024**2, 1),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "java": run("java", "-version"),
        "postgres": run("postgres", "--version"),
        "kafka": _kafka_version(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _kafka_version() -> str:
    pom = ROOT / "deploy" / "kafka" / "pom.xml"
    found = (
        re.search(r"<kafka.version>([^<]+)</kafka.version>", pom.read_text())
        if pom.exists()
        else None
    )
    return f"Apache Kafka {found.group(1)} (KRaft, one node)" if found else "unknown"


def load(url: str, key: str, **opts: Any) -> dict[str, Any]:
    """Run intake's load generator (``bench.intake.load``) in a process of its own against
    ``url``; returns its figures."""
    cmd = [sys.executable, "-m", "bench.intake.load", "--url", url, "--key", key]
    for name, value in opts.items():
        cmd += [f"--{name.replace('_', '-')}", str(value)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def wait_ready(url: str, timeout_s: float = 30) -> None:
    """Wait until ``url``/readyz answers 200 (a server started in another process)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready")


async def new_database(database_url: str, prefix: str) -> str:
    """A new, empty database on ``database_url``'s server; returns its URL."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = database_url.replace("+asyncpg", "")
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin.rsplit("/", 1)[0] + f"/{name}"


@asynccontextmanager
async def scratch_database(database_url: str, prefix: str) -> AsyncIterator[str]:
    """A database of its own for one benchmark run, dropped afterwards; yields its URL."""
    import asyncpg

    url = await new_database(database_url, prefix)
    try:
        yield url
    finally:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        await conn.close()


async def drive_consumer(
    bootstrap: str,
    topic: str,
    producer: Any,
    count: int,
    handle: Callable[[Sequence[Any]], Awaitable[None]],
    relay: Any,
    *,
    lanes: int = 1,
    max_records: int | None = None,
) -> float:
    """Run a batch consumer (and the service's relay) until ``count`` events were handled,
    polling ``max_records`` at a time (the services' default unless given) as the service does;
    returns the seconds from the first batch to the last."""
    from leadrelay_shared.consumer import EventConsumer
    from leadrelay_shared.runtime import settle_heap
    from leadrelay_shared.settings import ServiceSettings

    poll = max_records or ServiceSettings.model_fields["consumer_max_records"].default

    handled, first = 0, None
    finished = asyncio.Event()

    async def batch(events: Sequence[Any]) -> None:
        nonlocal handled, first
        first = first or time.perf_counter()
        await handle(events)
        relay.wake()
        handled += len(events)
        if handled >= count:
            finished.set()

    consumer = EventConsumer(
        bootstrap=bootstrap,
        group_id=f"bench-{uuid.uuid4()}",
        topics=[topic],
        batch_handler=batch,
        producer=producer,
        max_records=poll,
        lanes=lanes,
    )
    settle_heap()  # as each service does once started
    tasks = [asyncio.create_task(consumer.run()), asyncio.create_task(relay.run())]
    try:
        await asyncio.wait_for(finished.wait(), timeout=max(60, count / 100))
        return time.perf_counter() - (first or time.perf_counter())
    finally:
        consumer.stop()
        relay.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
