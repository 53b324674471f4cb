"""``leadrelay scoring``: check a model file; re-score a window's leads under one (``simulate``);
erase a lead's personal data. They work on the database named by ``DATABASE_URL``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from leadrelay_shared import yamlconf
from leadrelay_shared.cli import add_what_if, what_if
from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import lead_id_for
from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade

from . import handlers, views
from .adapters.config_store import ModelStore
from .adapters.repository import ScoringUnitOfWork
from .config import ScoringModel, parse
from .errors import LeadNotFound, ModelError
from .settings import ScoringSettings
from .views import model_summary


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scoring = sub.add_parser("scoring", help="scoring model and lead data")
    actions = scoring.add_subparsers(dest="scoring_command", required=True)
    check = actions.add_parser("check", help="validate a scoring model file without applying it")
    check.add_argument("path", type=Path)
    sim = actions.add_parser(
        "simulate", help="what a candidate model would have made of the leads of a window"
    )
    sim.add_argument("path", type=Path, help="the candidate model file")
    add_what_if(sim)
    erase = actions.add_parser("erase", help="erase a lead's personal data (GDPR)")
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--lead-id")
    who.add_argument("--email", help="normalised email; the lead id is derived from it")
    erase.add_argument("--requested-by", default=None, help="ticket or request reference")


def run(args: argparse.Namespace) -> int:
    if args.scoring_command == "check":
        return check(args.path)
    settings = ScoringSettings()
    upgrade("scoring", settings.database_url, "scoring")
    if args.scoring_command == "simulate":
        return simulate(settings, args)
    lead_id = args.lead_id or lead_id_for(args.email.strip().lower())
    return asyncio.run(_erase(settings, lead_id, args.requested_by))


def _load(path: Path) -> ScoringModel | int:
    """The model in ``path``, or the exit status that says why not (2 unreadable, 1 invalid)."""
    try:
        return parse(path.read_text(), str(path))
    except OSError as exc:
        print(f"error: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ModelError as exc:
        yamlconf.print_problems(exc)
        return 1


def check(path: Path) -> int:
    model = _load(path)
    if isinstance(model, int):
        return model
    s = model_summary(model)
    print(
        f"{path}: ok — version {s['version']}, {s['fit_rules']} fit rules, "
        f"{s['engagement_rules']} engagement rules, grades {s['grades']}, "
        f"MQL at grade {s['mql']['min_grade']} and engagement {s['mql']['min_engagement']}"
    )
    return 0


async def _erase(settings: ScoringSettings, lead_id: str, requested_by: str | None) -> int:
    engine = make_engine(settings.database_url, pool_size=1, name="leadrelay-scoring-cli")
    try:
        erased_at = await handlers.erase(
            lead_id, uow=ScoringUnitOfWork(engine), now=utcnow(), requested_by=requested_by
        )
    except LeadNotFound:
        print(f"error: no lead {lead_id}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"erased {lead_id} at {erased_at.isoformat()}; lead.erased is in the outbox")
    return 0


def simulate(settings: ScoringSettings, args: argparse.Namespace) -> int:
    candidate = _load(args.path)
    if isinstance(candidate, int):
        return candidate

    async def replay(since: datetime, until: datetime) -> tuple[list[str], list[dict[str, Any]]]:
        engine = make_engine(settings.database_url, name="leadrelay-scoring-simulate")
        active = ModelStore(settings.model_path).current  # as the service runs it
        try:
            result = await views.what_if(engine, active, candidate, since, until)
        finally:
            await engine.dispose()
        return result.summary(), [c.row() for c in result.leads]

    return what_if(args, replay)
