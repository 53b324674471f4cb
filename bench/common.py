"""What every benchmark shares: latency statistics, the machine's description, and a report that
prints each figure beside its target. Benchmarks are not tests: they never fail the build."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


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
        target = "" if self.target is None else \
            f"{'≥' if self.higher_is_better else '≤'} {self.target:,.6g}"
        verdict = {True: "met", False: "NOT met", None: ""}[self.met]
        spread = f"[{min(self.runs):,.6g} … {max(self.runs):,.6g}]" if len(self.runs) > 1 else ""
        return (f"| {self.name} | {self.value:,.6g} {self.unit} | {spread} | {target} | {verdict} "
                f"| {self.note} |")


@dataclass
class Report:
    title: str
    figures: list[Figure] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def markdown(self) -> str:
        lines = [f"## {self.title}", "",
                 "| figure | median | [min … max] | target | | note |",
                 "|---|---|---|---|---|---|"]
        lines += [f.row() for f in self.figures]
        if self.context:
            lines += ["", "context: " + ", ".join(f"{k}={v}" for k, v in self.context.items())]
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "context": self.context,
                "figures": [{**asdict(f), "value": f.value, "met": f.met} for f in self.figures]}

    def save(self, name: str) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        path = RESULTS / f"{name}-{stamp}.json"
        path.write_text(json.dumps({"machine": machine(), **self.to_json()}, indent=2))
        return path


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
    return {"cores": os.cpu_count(), "memory_gib": round(mem_kib / 1024 ** 2, 1),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "java": run("java", "-version"), "postgres": run("postgres", "--version"),
            "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
