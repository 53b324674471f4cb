"""``leadrelay scoring``: check a model file; erase a lead's personal data."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from leadrelay_shared import yamlconf
from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import lead_id_for
from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade

from . import handlers
from .adapters.repository import ScoringUnitOfWork
from .config import parse
from .errors import LeadNotFound, ModelError
from .settings import ScoringSettings
from .views import model_summary


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scoring = sub.add_parser("scoring", help="scoring model and lead data")
    actions = scoring.add_subparsers(dest="scoring_command", required=True)
    check = actions.add_parser("check", help="validate a scoring model file without applying it")
    check.add_argument("path", type=Path)
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
    lead_id = args.lead_id or lead_id_for(args.email.strip().lower())
    return asyncio.run(_erase(settings, lead_id, args.requested_by))


def check(path: Path) -> int:
    try:
        model = parse(path.read_text(), str(path))
    except OSError as exc:
        print(f"error: {path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ModelError as exc:
        yamlconf.print_problems(exc)
        return 1
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
