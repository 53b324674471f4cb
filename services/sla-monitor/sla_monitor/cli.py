"""``leadrelay sla``: check a policy file; show when a handoff would be due."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import datetime
from pathlib import Path

from leadrelay_shared import yamlconf
from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import Stage

from . import domain
from .calendar import local_text
from .config import SlaConfig, load
from .errors import PolicyError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sla = sub.add_parser("sla", help="SLA policies")
    actions = sla.add_subparsers(dest="sla_command", required=True)
    check = actions.add_parser("check", help="validate an SLA policy file without applying it")
    check.add_argument("path", type=Path)
    due = actions.add_parser("due", help="which policy applies to a handoff and when it is due")
    due.add_argument("path", type=Path)
    due.add_argument("--stage", default="mql", choices=[s.value for s in Stage])
    due.add_argument("--at", default=None, help="handoff time, ISO 8601 with offset (default now)")
    due.add_argument("--zone", default=None, help="the assignee's time zone, e.g. Europe/Paris")
    due.add_argument("--team", default="-")
    due.add_argument("--fit-grade", default=None)
    due.add_argument("--engagement", type=int, default=None)


def _load(path: Path) -> SlaConfig | None:
    try:
        return load(path)
    except PolicyError as exc:
        yamlconf.print_problems(exc)
        return None


def run(args: argparse.Namespace) -> int:
    config = _load(args.path)
    if config is None:
        return 1
    if args.sla_command == "check":
        print(
            f"{args.path}: ok — version {config.version}, {len(config.policies)} policies "
            f"({', '.join(p.id for p in config.policies)}), "
            f"{len(config.spec.calendars)} calendars, {len(config.channels)} channels"
        )
        return 0
    at = datetime.fromisoformat(args.at) if args.at else utcnow()
    if at.tzinfo is None:
        print("--at needs a UTC offset, e.g. 2026-11-27T17:45:00+01:00", file=sys.stderr)
        return 2
    h = domain.Handoff(
        lead_id="(example)",
        assignment_id=uuid.uuid4(),
        stage=Stage(args.stage),
        owner=domain.Person("(rep)", "the rep"),
        team_id=args.team,
        at=at,
        owner_zone=args.zone,
        fit_grade=args.fit_grade,
        engagement_score=args.engagement,
    )
    policy, reasons = domain.select(config, h)
    for reason in reasons:
        print(f"- {reason.message}")
    if policy is None:
        return 0
    clock = domain.start_clock(h, policy, config.version)
    print(clock.due_text)
    zone = policy.zone_for(args.zone)
    for level in domain.ESCALATING:
        when = clock.level_at(level)
        if when is not None:
            print(f"  {level:<11} {local_text(when, zone)}")
    return 0
