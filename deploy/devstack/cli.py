"""The ``leadrelay`` command: run the stack, run the demo, manage keys, check models."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from .stack import ROOT, SERVICES, Stack


def run_stack(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ.get("LEADRELAY_DATA_DIR", ROOT / ".data"))
    stack = Stack(
        data_dir=data_dir,
        extra_env={
            # Short round-the-clock SLAs in development, so that `make demo` shows the alerts.
            "SLA_POLICIES_PATH": os.environ.get(
                "SLA_POLICIES_PATH", str(ROOT / "deploy" / "config" / "sla-demo.yaml")
            ),
        },
    )
    stopping = False

    def on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        print("\nstopping leadrelay…", flush=True)
        stack.stop()
        sys.exit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        print("starting PostgreSQL and Kafka…", flush=True)
        stack.start_infra()
        print(f"  PostgreSQL  {stack.database_url}\n  Kafka       {stack.bootstrap}", flush=True)
        stack.start_services()
        stack.wait_ready()
    except BaseException:
        stack.stop()
        raise
    key = stack.api_key()
    password = stack.console_account()
    print("\nleadrelay is up:")
    for spec in SERVICES:
        if spec.name == "console":
            print(
                f"  {spec.name:<12} {stack.url(spec.name)}   sign in as admin, password"
                f" {password} (kept in {data_dir / 'console-password'})"
            )
            continue
        token = "" if spec.name == "intake" else f"   token: {stack.admin_token(spec.name)}"
        print(
            f"  {spec.name:<12} {stack.url(spec.name)}   (docs: {stack.url(spec.name)}/docs){token}"
        )
    print(
        f"  API key      {key}\n               (every scope; kept in {data_dir / 'dev-api-key'};"
        " make your own with `leadrelay keys create`)"
    )
    print("  try: make demo    — stop with Ctrl-C\n", flush=True)
    signal.pause()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadrelay")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start Kafka, PostgreSQL and the six services")
    sub.add_parser("demo", help="post sample leads to a running stack and show the results")
    from analytics import cli as analytics_cli
    from console import cli as console_cli
    from intake import cli as intake_cli
    from router import cli as routing_cli
    from scoring import cli as scoring_cli
    from sla_monitor import cli as sla_cli

    intake_cli.add_parser(sub)
    scoring_cli.add_parser(sub)
    routing_cli.add_parser(sub)
    sla_cli.add_parser(sub)
    analytics_cli.add_parser(sub)
    console_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_stack(args)
    if args.command == "keys":
        return intake_cli.run(args)
    if args.command == "scoring":
        return scoring_cli.run(args)
    if args.command == "routing":
        return routing_cli.run(args)
    if args.command == "sla":
        return sla_cli.run(args)
    if args.command == "console":
        return console_cli.run(args)
    if args.command in ("analytics", "funnel", "plan"):
        return analytics_cli.run(args)
    from . import demo

    return demo.main()
