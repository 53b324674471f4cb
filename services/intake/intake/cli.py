"""``leadrelay keys``: create, list and revoke intake's API keys (against ``DATABASE_URL``)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from leadrelay_shared.db import make_engine
from leadrelay_shared.migrate import upgrade

from .adapters.keystore import create_key, list_keys, revoke_key
from .auth import KeyKind, Scope
from .settings import IntakeSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="manage intake's API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key; it is printed once, never again")
    create.add_argument("--source", required=True, help="who will use it, e.g. website, hubspot")
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        choices=[s.value for s in Scope],
        help="repeat for several scopes",
    )
    create.add_argument(
        "--publishable",
        action="store_true",
        help="a browser key (lr_pk_...): forms:write only, limited to --origin",
    )
    create.add_argument(
        "--origin",
        action="append",
        default=[],
        dest="origins",
        help="allowed browser origin, e.g. https://www.example.com (repeatable)",
    )
    create.add_argument("--rate-limit", default=None, help="e.g. 20/second (default: settings)")
    actions.add_parser("list", help="list keys (ids, sources, scopes; never the keys)")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    settings = IntakeSettings()
    upgrade("intake", settings.database_url, "intake")
    return asyncio.run(_run(args, settings))


async def _run(args: argparse.Namespace, settings: IntakeSettings) -> int:
    engine = make_engine(settings.database_url, pool_size=1, name="leadrelay-intake-cli")
    try:
        if args.keys_command == "create":
            try:
                key, record = await create_key(
                    engine,
                    source=args.source,
                    scopes=args.scopes,
                    allowed_origins=args.origins,
                    kind=KeyKind.PUBLISHABLE if args.publishable else KeyKind.SECRET,
                    rate_limit=args.rate_limit,
                )
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(
                f"key id  {record.key_id}\nscopes  {', '.join(sorted(record.scopes))}\n"
                f"key     {key}\n\nStore the key now: leadrelay keeps only its hash."
            )
        elif args.keys_command == "list":
            for k in await list_keys(engine):
                state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
                print(
                    f"{k.key_id}  {k.kind.value}  {k.source:<16} {state:<18} "
                    f"{','.join(sorted(k.scopes))}  {' '.join(k.allowed_origins)}"
                )
        else:
            if not await revoke_key(engine, args.key_id):
                print(f"error: no active key {args.key_id}", file=sys.stderr)
                return 1
            print(
                f"revoked {args.key_id}; intake instances stop accepting it within "
                f"{settings.api_key_cache_ttl_s:g} s"
            )
        return 0
    finally:
        await engine.dispose()
