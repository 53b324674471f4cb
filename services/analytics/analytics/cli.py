"""``leadrelay analytics rebuild``, ``leadrelay funnel`` and ``leadrelay plan``: the read model
rebuilt from the topics, the waterfall and the reverse waterfall printed as tables. They work on
the database (and, for a rebuild, Kafka) named by ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS``."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from leadrelay_shared.clock import utcnow
from leadrelay_shared.codec import PoisonMessage, decode
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import read_history
from leadrelay_shared.migrate import upgrade

from . import domain, handlers, views
from .adapters.orm import SCHEMA
from .adapters.repository import AnalyticsUnitOfWork
from .bootstrap import TOPICS
from .settings import AnalyticsSettings

_HANDLED = {t.event_type for t in handlers.HANDLED}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    analytics = sub.add_parser("analytics", help="the funnel's read model")
    actions = analytics.add_subparsers(dest="analytics_command", required=True)
    actions.add_parser(
        "rebuild", help="empty the read model and replay every topic from its earliest offset"
    )
    funnel = sub.add_parser("funnel", help="print the waterfall")
    funnel.add_argument("--since", default="90d", help="a period back from now: 90d, 12w, 6m")
    funnel.add_argument("--by", default=None, choices=list(views.By.__args__))  # type: ignore[attr-defined]
    funnel.add_argument("--horizon-days", type=int, default=None)
    plan = sub.add_parser("plan", help="how many leads the revenue target needs")
    plan.add_argument("--revenue", type=float, required=True)
    plan.add_argument("--deal-size", type=float, default=None)
    plan.add_argument("--marketing-share", type=float, default=1.0)
    plan.add_argument("--window-days", type=int, default=180)
    for name in domain.RATE_NAMES:
        plan.add_argument(f"--{name.replace('_', '-')}", type=float, default=None, dest=name)


def period(text: str) -> timedelta:
    """``90d``, ``12w`` or ``6m`` (30-day months) back from now."""
    found = re.fullmatch(r"(\d+)([dwm])", text.strip())
    if not found:
        raise ValueError(f"{text!r}: give a number and d, w or m, e.g. 90d")
    n, unit = int(found[1]), found[2]
    return timedelta(days=n * {"d": 1, "w": 7, "m": 30}[unit])


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as a plain text table, numbers right-aligned."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [all(_numeric(r.get(c)) for r in rows) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row in cells:
        lines.append(
            "  ".join(
                v.rjust(w) if num else v.ljust(w)
                for v, w, num in zip(row, widths, numeric, strict=True)
            )
        )
    return "\n".join(lines)


def _numeric(v: Any) -> bool:
    return v is None or isinstance(v, int | float)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


async def rebuild(settings: AnalyticsSettings) -> int:
    engine = make_engine(settings.database_url, name="leadrelay-analytics-rebuild")

    async def replay() -> int:
        done = 0
        async for records in read_history(settings.kafka_bootstrap_servers, TOPICS):
            events = []
            for r in records:
                types = dict(r.headers or ())
                if types.get("ce_type", b"").decode(errors="replace") not in _HANDLED:
                    continue
                try:
                    events.append(decode(list(r.headers or ()), r.value, r.key))
                except PoisonMessage:
                    continue  # the live consumer dead-lettered it when it first came
            if events:
                await handlers.record(events, uow=AnalyticsUnitOfWork(engine))
                done += len(events)
        return done

    try:
        return await handlers.rebuild(replay, uow=AnalyticsUnitOfWork(engine))
    finally:
        await engine.dispose()


async def funnel(settings: AnalyticsSettings, args: argparse.Namespace) -> str:
    now = utcnow()
    engine = make_engine(
        settings.database_url, name="leadrelay-analytics-cli", server_settings=views.SERVER_SETTINGS
    )
    horizon = timedelta(days=args.horizon_days or settings.horizon_days)
    try:
        groups = await views.waterfall(
            engine,
            views.Cut(since=now - period(args.since), until=now),
            by=args.by,
            horizon=horizon,
            now=now,
        )
    finally:
        await engine.dispose()
    columns = [
        "stage",
        "entered",
        "balance",
        "cohort_conversion",
        "cohort_mature",
        "period_conversion",
        "velocity_p50_s",
        "velocity_p90_s",
    ]
    if args.by:
        columns.insert(0, "group")
    return table(views.flatten(groups), columns)


async def plan(settings: AnalyticsSettings, args: argparse.Namespace) -> str:
    now = utcnow()
    window = views.Cut(since=now - timedelta(days=args.window_days), until=now)
    horizon = timedelta(days=settings.horizon_days)
    given = {n: getattr(args, n) for n in domain.RATE_NAMES if getattr(args, n) is not None}
    engine = make_engine(
        settings.database_url, name="leadrelay-analytics-cli", server_settings=views.SERVER_SETTINGS
    )
    try:
        result = domain.plan(
            revenue_target=args.revenue,
            avg_deal_size=args.deal_size,
            measured_deal_size=None
            if args.deal_size
            else (await views.average_won(engine, window))[0],
            marketing_share=args.marketing_share,
            window_days=args.window_days,
            rates=given,
            measured=await views.measured_rates(engine, window, horizon, now),
            run_rates=await views.run_rates(engine, window),
        )
    finally:
        await engine.dispose()
    rows = [
        {
            "stage": s.stage.value,
            "needed": s.needed,
            "run_rate": s.run_rate,
            "gap": s.gap,
            "rate_to_next": s.rate_to_next,
            "rate": s.rate_source,
            "sample": s.sample,
        }
        for s in result.stages
    ]
    head = (
        f"revenue {result.revenue_target:,} at {result.avg_deal_size:,} a deal "
        f"({result.deal_size_source}), marketing share {result.marketing_share:.0%}, "
        f"window {result.window_days} days"
    )
    notes = "".join(f"\n- {r}" for r in result.reasons)
    return f"{head}\n{table(rows, list(rows[0]))}{notes}"


def run(args: argparse.Namespace) -> int:
    settings = AnalyticsSettings()
    upgrade("analytics", settings.database_url, SCHEMA)
    try:
        if args.command == "analytics":
            count = asyncio.run(rebuild(settings))
            print(f"analytics rebuilt from {count:,} events")
        elif args.command == "funnel":
            print(asyncio.run(funnel(settings, args)))
        else:
            print(asyncio.run(plan(settings, args)))
    except (ValueError, domain.PlanError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
