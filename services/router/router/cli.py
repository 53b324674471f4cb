"""``leadrelay routing``: check a routing configuration, or diff two of them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from leadrelay_shared import yamlconf

from . import admin
from .config import RoutingConfig, load
from .errors import ConfigError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    routing = sub.add_parser("routing", help="routing configuration")
    actions = routing.add_subparsers(dest="routing_command", required=True)
    check = actions.add_parser("check", help="validate a routing file (and its accounts CSV)")
    check.add_argument("path", type=Path)
    diff = actions.add_parser("diff", help="what changes between two routing files")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.add_argument("--json", action="store_true", help="print the diff as JSON")


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
