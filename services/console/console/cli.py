"""``leadrelay console create-user``: an operator account for the console, in the database named
by ``DATABASE_URL``. The password is read from the terminal (twice), or from standard input with
``--password-stdin``; it never appears in the command line or the shell's history."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from argon2 import PasswordHasher

from leadrelay_shared.clock import utcnow
from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade

from . import handlers
from .adapters.orm import SCHEMA
from .adapters.users import Users
from .domain import AccountError, Role
from .settings import ConsoleSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = sub.add_parser("console", help="the console's accounts")
    actions = console.add_subparsers(dest="console_command", required=True)
    create = actions.add_parser(
        "create-user", help="create an account, or set a new password and role for one"
    )
    create.add_argument("username")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value)
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("password", "the two entries differ")
    return first


def run(args: argparse.Namespace) -> int:
    settings = ConsoleSettings()
    try:
        password = _password(args.password_stdin)
        upgrade("console", settings.database_url, SCHEMA)
        created = asyncio.run(_create(settings, args.username, password, Role(args.role)))
    except AccountError as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 2
    print(f"{'created' if created else 'updated'} {args.username} ({args.role})")
    return 0


async def _create(settings: ConsoleSettings, username: str, password: str, role: Role) -> bool:
    engine = make_engine(settings.database_url, name="leadrelay-console-cli", pool_size=1)
    try:
        return await handlers.create_user(
            Users(engine), PasswordHasher(), username, password, role, utcnow()
        )
    finally:
        await engine.dispose()
