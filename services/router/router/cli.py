"""``leadrelay routing``: check a routing configuration, diff two of them, or replay the leads
routed in a window through one (``simulate``, on the database named by ``DATABASE_URL``)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leadrelay_shared import yamlconf
from leadrelay_shared.clock import utcnow
from leadrelay_shared.db import make_engine

from . import admin, views
from .config import RoutingConfig, load
from .errors import ConfigError
from .settings import RouterSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    routing = sub.add_parser("routing", help="routing configuration")
    actions = routing.add_subparsers(dest="routing_command", required=True)
    check = actions.add_parser("check", help="validate a routing file (and its accounts CSV)")
    check.add_argument("path", type=Path)
    diff = actions.add_parser("diff", help="what changes between two routing files")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.add_argument("--json", action="store_true", help="print the diff as JSON")
    sim = actions.add_parser(
        "simulate", help="what a candidate routing file would have done with the leads routed"
    )
    sim.add_argument("path", type=Path, help="the candidate routing file")
    sim.add_argument("--days", type=int, default=None, help="the last N days (default 30)")
    sim.add_argument("--from", dest="since", type=datetime.fromisoformat, default=None)
    sim.add_argument("--to", dest="until", type=datetime.fromisoformat, default=None)
    sim.add_argument("--csv", type=Path, default=None, help="write one row per lead to FILE")


def run(args: argparse.Namespace) -> int:
    if args.routing_command == "check":
        config = _load(args.path)
        if config is None:
            return 1
        print(
            f"{args.path}: ok — version {config.version}, {len(config.reps)} reps, "
            f"{len(config.teams)} teams, {len(config.territories)} territories, "
            f"{len(config.accounts)} accounts, {len(config.endpoints())} webhooks"
        )
        return 0
    if args.routing_command == "simulate":
        return simulate(args)
    old, new = _load(args.old), _load(args.new)
    if old is None or new is None:
        return 1
    changes = admin.diff(old.document(), new.document())
    print(
        json.dumps(changes, indent=2, default=str)
        if args.json
        else f"{old.version} -> {new.version}\n{admin.render(changes)}"
    )
    return 0


def _load(path: Path) -> RoutingConfig | None:
    try:
        return load(path)
    except ConfigError as exc:
        yamlconf.print_problems(exc)
        return None


def simulate(args: argparse.Namespace) -> int:
    candidate = _load(args.path)
    if candidate is None:
        return 1
    if args.days is not None and args.since is not None:
        print("error: give --days or --from, not both")
        return 2
    until = _aware(args.until) if args.until else utcnow()
    since = _aware(args.since) if args.since else until - timedelta(days=args.days or 30)
    if since >= until:
        print("error: --from must come before --to")
        return 2

    async def replay() -> list[str]:
        engine = make_engine(RouterSettings().database_url, name="leadrelay-routing-simulate")
        try:
            result = await views.what_if(engine, candidate, since, until)
        finally:
            await engine.dispose()
        if args.csv is not None:
            with args.csv.open("w", newline="") as out:
                rows = [r.row() for r in result.leads]
                writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["lead_id"])
                writer.writeheader()
                writer.writerows(rows)
        return result.summary()

    print("\n".join(asyncio.run(replay())))
    if args.csv is not None:
        print(f"per-lead rows written to {args.csv}")
    return 0


def _aware(at: datetime) -> datetime:
    """A time given without a zone is UTC."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)
