"""The ``leadrelay`` command: run the stack or one service, migrate, run the demo, manage keys,
check models."""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType

from .stack import ROOT, SERVICES, Stack


def run_stack(args: argparse.Namespace) -> int:
    data_dir = Path(os.environ.get("LEADRELAY_DATA_DIR", ROOT / ".data"))
    stack = Stack(
        data_dir=data_dir,
        brokers=int(os.environ.get("LEADRELAY_BROKERS") or 1),
        replicas=int(os.environ.get("LEADRELAY_REPLICAS") or 1),
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
        also = stack.instances.get(spec.name, [])[1:]
        more = "".join(f"\n  {n:<12} {stack.url(n)}" for n in also)
        if spec.name == "console":
            print(
                f"  {spec.name:<12} {stack.url(spec.name)}   sign in as admin, password"
                f" {password} (kept in {data_dir / 'console-password'}){more}"
            )
            continue
        token = "" if spec.name == "intake" else f"   token: {stack.admin_token(spec.name)}"
        print(
            f"  {spec.name:<12} {stack.url(spec.name)}   (docs: {stack.url(spec.name)}/docs)"
            f"{token}{more}"
        )
    print(
        f"  API key      {key}\n               (every scope; kept in {data_dir / 'dev-api-key'};"
        " make your own with `leadrelay keys create`)"
    )
    print("  try: make demo    — stop with Ctrl-C\n", flush=True)
    signal.pause()
    return 0


def serve(name: str) -> int:
    """One service in this process, as ``python -m <package>`` runs it, without migrating:
    where services run as replicas, ``leadrelay migrate`` runs once before them."""
    spec = next(s for s in SERVICES if s.name == name)
    os.environ.setdefault("LEADRELAY_MIGRATE_ON_START", "false")
    runpy.run_module(spec.module, run_name="__main__", alter_sys=True)
    return 0


def migrate(names: list[str]) -> int:
    """Bring each named service's schema (every service's, if none is named) up to date, on
    the database that ``DATABASE_URL`` names."""
    from leadrelay_shared.migrate import upgrade
    from leadrelay_shared.settings import ServiceSettings

    unknown = sorted(set(names) - {s.name for s in SERVICES})
    if unknown:
        print(f"no such service: {', '.join(unknown)}", file=sys.stderr)
        return 2
    url = ServiceSettings().database_url
    for spec in SERVICES:
        if not names or spec.name in names:
            upgrade(spec.module, url, spec.schema)
            print(f"{spec.name}: schema {spec.schema} is up to date", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadrelay")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start Kafka, PostgreSQL and the six services")
    one = sub.add_parser("serve", help="serve one service (as a container does)")
    one.add_argument("service", choices=[s.name for s in SERVICES])
    schemas = sub.add_parser("migrate", help="bring the services' schemas up to date")
    schemas.add_argument("services", nargs="*", metavar="SERVICE", help="default: every one")
    health = sub.add_parser("status", help="the pipeline's health now: services, lag, backlogs")
    health.add_argument("--json", action="store_true", help="for machines")
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
    if args.command == "serve":
        return serve(args.service)
    if args.command == "migrate":
        return migrate(args.services)
    if args.command == "status":
        from . import status

        return status.main(args.json)
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
