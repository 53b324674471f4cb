"""``python -m bench`` (``make bench``): every benchmark, each in a process of its own, then one
report: ``bench/results/<date>.md`` and ``bench/results/<date>.json``, with the machine's
description and, for every figure, its median, min and max over the runs, its target and whether
it is met.

``--smoke`` (``make bench-smoke``) runs each benchmark's short pass and builds the report in a
temporary folder: it proves the harness, it measures nothing. ``--only e2e,sla`` runs a subset;
the report keeps the other benchmarks' results saved earlier the same day.
Benchmarks never fail the build: a benchmark that crashes is reported as such and the others
still run; the exit status is non-zero only in smoke mode, where a crash means a broken harness.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS, RESULTS_ENV, ROOT, SCRATCH_ENV, machine, remove_scratch
from devstack.stack import Stack

BENCHES = (
    "e2e",
    "cluster",
    "intake",
    "scoring",
    "router",
    "sla",
    "analytics",
    "beside",
    "console",
    "tracing",
)
TITLES = {
    "e2e": "End to end",
    "cluster": "End to end on a three-node cluster",
    "intake": "intake",
    "scoring": "scoring",
    "router": "router",
    "sla": "sla-monitor",
    "analytics": "analytics",
    "beside": "analytics beside the lead's path",
    "console": "console",
    "tracing": "Tracing",
}
COMMAND = {
    "e2e": "python -m bench.e2e",
    "cluster": "python -m bench.cluster",
    "intake": "python -m bench.intake",
    "scoring": "python -m bench.scoring",
    "router": "python -m bench.router",
    "sla": "python -m bench.sla",
    "analytics": "python -m bench.analytics",
    "beside": "python -m bench.beside",
    "console": "python -m bench.console",
    "tracing": "python -m bench.tracing",
}


def _cell(value: float) -> str:
    return f"{value:,.6g}"


def section(name: str, data: dict[str, Any] | None, seconds: float, error: str | None) -> str:
    lines = [f"## {TITLES[name]}", "", f"`{COMMAND[name]}` ({seconds:.0f} s)", ""]
    if data is None:
        lines += [f"**Did not finish**: {error}", ""]
        return "\n".join(lines)
    lines += [
        f"_{data['title']}_",
        "",
        "| figure | median | [min … max] | target | | note |",
        "|---|---|---|---|---|---|",
    ]
    for f in data["figures"]:
        runs = f["runs"]
        spread = f"[{_cell(min(runs))} … {_cell(max(runs))}]" if len(runs) > 1 else ""
        target = (
            ""
            if f["target"] is None
            else f"{'≥' if f['higher_is_better'] else '≤'} {_cell(f['target'])}"
        )
        verdict = {True: "met", False: "**NOT met**", None: ""}[f["met"]]
        value = _cell(f["value"]) if runs else "–"
        lines.append(
            f"| {f['name']} | {value} {f['unit']} | {spread} | {target} | {verdict} | {f['note']} |"
        )
    context = {k: v for k, v in data.get("context", {}).items() if k != "steps"}
    if context:
        lines += ["", "context: " + ", ".join(f"{k}={v}" for k, v in context.items())]
    return "\n".join(lines + [""])


def summary(results: dict[str, dict[str, Any] | None]) -> str:
    lines = [
        "## Targets",
        "",
        "| benchmark | figure | median | target | |",
        "|---|---|---|---|---|",
    ]
    for name, data in results.items():
        for f in (data or {}).get("figures", []):
            if f["target"] is None:
                continue
            sign = "≥" if f["higher_is_better"] else "≤"
            verdict = "met" if f["met"] else "**NOT met**"
            value = _cell(f["value"]) if f["runs"] else "–"
            lines.append(
                f"| {TITLES[name]} | {f['name']} | {value} {f['unit']} | "
                f"{sign} {_cell(f['target'])} | {verdict} |"
            )
    return "\n".join(lines + [""])


def smoke_all(
    names: list[str], folder: Path, env: dict[str, str], timing: dict[str, float]
) -> dict[str, int]:
    """Smoke mode: one PostgreSQL and one Kafka for every benchmark (unless the environment
    names some), and the benchmarks' short passes all at once, each in its own process. They
    measure nothing, so sharing the machine costs nothing; it keeps ``make bench-smoke`` near a
    minute instead of two (a Kafka and a PostgreSQL start took about 8 s per benchmark)."""
    infra = None
    if not (env.get("DATABASE_URL") or env.get("KAFKA_BOOTSTRAP_SERVERS")):
        infra = Stack(data_dir=folder / "infra", durable=False, pick_free_ports=True)
        infra.start_infra()
        env = {
            **env,
            "DATABASE_URL": infra.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
            SCRATCH_ENV: "1",
        }
    began = time.perf_counter()
    try:
        running = {}
        for name in names:
            log = (folder / f"{name}.log").open("wb")
            running[name] = (
                subprocess.Popen(
                    [sys.executable, "-m", f"bench.{name}", "--smoke"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        codes: dict[str, int] = {}
        while len(codes) < len(running):
            for name, (proc, log) in running.items():
                if name not in codes and proc.poll() is not None:
                    codes[name] = proc.returncode
                    timing[name] = time.perf_counter() - began
                    log.close()
            time.sleep(0.2)
        for name in running:
            print(f"\n=== bench.{name} (smoke, exit {codes[name]}) ===", flush=True)
            sys.stdout.write((folder / f"{name}.log").read_text(errors="replace")[-4000:])
        return codes
    finally:
        if infra is not None:
            infra.stop()
            remove_scratch(folder / "infra")  # the report files beside it stay


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--smoke", action="store_true", help="short passes; proves the harness")
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(BENCHES))
    args = parser.parse_args()
    names = [n for n in BENCHES if not args.only or n in args.only.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-smoke-")) if args.smoke else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, RESULTS_ENV: str(folder)}
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    results: dict[str, dict[str, Any] | None] = {}
    timing: dict[str, float] = {}
    failures: list[str] = []
    codes = smoke_all(names, folder, env, timing) if args.smoke else {}
    for name in names:
        if not args.smoke:
            print(f"\n=== bench.{name} ===", flush=True)
            began = time.perf_counter()
            codes[name] = subprocess.run(
                [sys.executable, "-m", f"bench.{name}"], cwd=ROOT, env=env
            ).returncode
            timing[name] = time.perf_counter() - began
        code = codes[name]
        path = folder / f"{name}-{stamp}.json"
        if code == 0 and path.exists():
            results[name] = json.loads(path.read_text())
        else:
            results[name] = None
            failures.append(f"bench.{name} exited with {code}")
    if args.only and not args.smoke:
        # a subset re-run: the other benchmarks keep today's saved results and timings
        before_path = folder / f"{stamp}.json"
        before = json.loads(before_path.read_text())["benchmarks"] if before_path.exists() else {}
        for name in BENCHES:
            saved = folder / f"{name}-{stamp}.json"
            if name not in names and saved.exists():
                results[name] = json.loads(saved.read_text())
                timing[name] = before.get(name, {}).get("seconds", 0.0)
                names.append(name)
        names.sort(key=BENCHES.index)
    host = machine()
    title = f"# leadrelay benchmarks, {stamp}{' (smoke: measures nothing)' if args.smoke else ''}"
    md = [
        title,
        "",
        f"Command: `make {'bench-smoke' if args.smoke else 'bench'}` (`python -m bench"
        f"{' --smoke' if args.smoke else ''}`). Each figure is the median of its runs, with "
        "min and max; every benchmark ran in a process of its own.",
        "",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in host.items()),
        "",
        summary(results),
    ]
    for name in names:
        error = next((f for f in failures if f.startswith(f"bench.{name} ")), None)
        md.append(section(name, results[name], timing[name], error))
    report_md, report_json = folder / f"{stamp}.md", folder / f"{stamp}.json"
    report_md.write_text("\n".join(md))
    report_json.write_text(
        json.dumps(
            {
                "machine": host,
                "smoke": args.smoke,
                "benchmarks": {
                    n: {"seconds": round(timing[n], 1), "result": results[n]} for n in names
                },
            },
            indent=2,
        )
    )
    print("\n" + summary(results))
    print(f"report: {report_md}\n        {report_json}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
    return 1 if args.smoke and failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
