"""``leadrelay routing``: check a routing configuration, diff two of them, or replay the leads
routed in a window through one (``simulate``, on the database named by ``DATABASE_URL``)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from leadrelay_shared import yamlconf
from leadrelay_shared.cli import add_what_if, what_if
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
    add_what_if(sim)


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

    async def replay(since: datetime, until: datetime) -> tuple[list[str], list[dict[str, Any]]]:
        engine = make_engine(RouterSettings().database_url, name="leadrelay-routing-simulate")
        try:
            result = await views.what_if(engine, candidate, since, until)
        finally:
            await engine.dispose()
        return result.summary(), [r.row() for r in result.leads]

    return what_if(args, replay)
