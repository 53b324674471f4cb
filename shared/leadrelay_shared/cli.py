"""What the services' command lines share: a what-if's window, summary and CSV file."""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import clock

Replay = Callable[[datetime, datetime], Coroutine[Any, Any, tuple[list[str], list[dict[str, Any]]]]]
"""A what-if over a window: its summary lines and its per-lead rows."""


def add_what_if(parser: argparse.ArgumentParser) -> None:
    """The window, ``--days`` back from now (30 by default) or ``--from`` and ``--to``, and
    ``--csv FILE`` for the per-lead rows."""
    parser.add_argument("--days", type=int, default=None, help="the last N days (default 30)")
    parser.add_argument("--from", dest="since", type=_aware, default=None, help="window start")
    parser.add_argument("--to", dest="until", type=_aware, default=None, help="window end")
    parser.add_argument("--csv", type=Path, default=None, help="write one row per lead to FILE")


def what_if(args: argparse.Namespace, replay: Replay) -> int:
    """Run ``replay`` over the window ``add_what_if``'s options give; print its summary and
    write its rows. Exit status: 0 done, 2 a window that is not one."""
    try:
        since, until = window(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary, rows = asyncio.run(replay(since, until))
    print("\n".join(summary))
    if args.csv is not None:
        write_csv(args.csv, rows)
        print(f"per-lead rows written to {args.csv}")
    return 0


def window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """The window ``add_what_if``'s options give; ``ValueError`` says what is wrong with it."""
    try:
        return clock.window(args.days, args.since, args.until)
    except clock.WindowError as exc:
        raise ValueError(f"--{exc.field}: {exc.message}") from None


def _aware(text: str) -> datetime:
    """An ISO time; one given without a zone is UTC."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Rows (flat, all with the first row's keys) as a CSV file."""
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
