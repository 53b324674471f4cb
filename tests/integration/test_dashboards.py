"""The funnel dashboard's SQL runs on analytics' read model as migrations leave it."""

from __future__ import annotations

import json
import re

import asyncpg
import pytest

from devstack.stack import ROOT

from .helpers import leadrelay

pytestmark = pytest.mark.integration

TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")


async def test_the_funnel_panels_query_what_analytics_keeps(database_url: str) -> None:
    migrated = await leadrelay(database_url, "migrate", "analytics")
    assert migrated.returncode == 0, migrated.stderr
    board = json.loads((ROOT / "deploy" / "grafana" / "leadrelay-funnel.json").read_text())
    queries = [t["rawSql"] for p in board["panels"] for t in p["targets"]]
    assert queries
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        for sql in queries:  # Grafana's macro, as it expands it
            await conn.fetch(
                TIME_FILTER.sub(r"\1 BETWEEN now() - interval '7 days' AND now()", sql)
            )
    finally:
        await conn.close()
