"""analytics on real Kafka and PostgreSQL: a seeded history sent out of order gives the
waterfall its closed form says, as JSON and CSV; the planner uses what was measured; a rebuild
from the topics gives the same figures."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from analytics import cli, domain, views
from analytics.adapters import orm
from analytics.adapters.repository import _REFRESH_STAGES, AnalyticsUnitOfWork, deals_of
from analytics.bootstrap import create_app
from analytics.schemas import PLAN_EXAMPLE
from analytics.settings import AnalyticsSettings
from bench.analytics import histories
from leadrelay_shared.contracts import Stage
from leadrelay_shared.db import driver, make_engine
from leadrelay_shared.migrate import upgrade
from tests.factories import T0
from tests.infra import Infra
from tests.integration.helpers import send, served, wait_for

pytestmark = pytest.mark.integration

READER = "test-analytics-reader"
LEADS = 600
PERIOD = {
    "since": (T0 - timedelta(days=1)).isoformat(),
    "until": (T0 + timedelta(days=400)).isoformat(),
}


@asynccontextmanager
async def analytics(settings: AnalyticsSettings) -> AsyncIterator[httpx.AsyncClient]:
    await asyncio.to_thread(upgrade, "analytics", settings.database_url, orm.SCHEMA)
    async with served(create_app(settings), READER) as client:
        yield client


async def by_source(client: httpx.AsyncClient, sources: tuple[str, ...]) -> dict[str, Any]:
    resp = await client.get("/v1/waterfall", params=PERIOD | {"by": "source", "horizon_days": 365})
    assert resp.status_code == 200, resp.text
    return {g["group"]: g for g in resp.json()["groups"] if g["group"] in sources}


def totals(groups: dict[str, Any]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for g in groups.values():
        for s in g["stages"]:
            row = out.setdefault(s["stage"], {"entered": 0, "balance": 0, "reached": 0})
            row["entered"] += s["entered"]
            row["balance"] += s["balance"]
            row["reached"] += s["reached_next"] or 0
    return out


async def test_a_history_out_of_order_gives_the_closed_form_waterfall_and_rebuilds_the_same(
    infra: Infra, database_url: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    sources = tuple(f"{s}-{tag}" for s in histories.SOURCES)
    people = histories.leads(LEADS, T0, timedelta(days=20), seed=11, sources=sources)
    events = list(histories.history(people, seed=11))
    random.Random(5).shuffle(events)  # late and out of order, across topics and leads
    await send(infra.bootstrap, *events)

    settings = AnalyticsSettings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.bootstrap,
        consumer_group=f"t-analytics-{tag}",
        consumer_poll_every_ms=50,
        admin_token="test-analytics-admin",
        read_token=READER,
    )
    want = histories.expected_entries(LEADS)
    async with analytics(settings) as client:

        async def complete() -> dict[str, Any] | None:
            """The waterfall once every stage change is in, and every topic's events (the
            four topics are consumed side by side, each at its own pace)."""
            groups = await by_source(client, sources)
            got = totals(groups)
            done = all(got.get(s.value, {}).get("entered") == n for s, n in want.items())
            done = done and got["recycled"]["entered"] == want[Stage.MQL] - want[Stage.SAL]
            speed = await client.get("/v1/speed-to-lead", params=PERIOD | {"by": "source"})
            handoffs = sum(g["handoffs"] for g in speed.json()["groups"] if g["group"] in sources)
            touched = sum(g["touched"] for g in speed.json()["groups"] if g["group"] in sources)
            breached = 0
            for source in sources:
                leak = await client.get("/v1/leakage", params=PERIOD | {"source": source})
                breached += leak.json()["untouched_before_breach"]["count"]
            unworked = -(-want[Stage.MQL] // histories.UNWORKED_EVERY)
            everything = (handoffs, touched, breached) == (
                want[Stage.MQL],
                want[Stage.MQL] - unworked,
                unworked,
            )
            return groups if done and everything else None

        groups = await wait_for(complete, timeout_s=90)
        assert groups, totals(await by_source(client, sources))
        got = totals(groups)
        funnel = list(histories.FUNNEL)
        for i, stage in enumerate(funnel[:-1]):
            assert got[stage.value]["reached"] == want[funnel[i + 1]], stage
        leavers = want[Stage.MQL] - want[Stage.SAL]  # rejected and recycled
        assert {s: got[s.value]["balance"] for s in funnel} == {
            Stage.INQUIRY: want[Stage.INQUIRY] - want[Stage.MQL],
            Stage.MQL: 0,
            Stage.SAL: want[Stage.SAL] - want[Stage.SQL],
            Stage.SQL: want[Stage.SQL] - want[Stage.OPPORTUNITY],
            Stage.OPPORTUNITY: want[Stage.OPPORTUNITY] - want[Stage.WON],
            Stage.WON: want[Stage.WON],
        }
        assert got["recycled"]["balance"] == leavers
        for g in groups.values():
            stages = {s["stage"]: s for s in g["stages"]}
            for stage, delay in histories.DELAYS.items():
                s = stages[stage.value]
                if s["reached_next"]:
                    seconds = delay.total_seconds()
                    assert (s["velocity_p50_s"], s["velocity_p90_s"]) == (seconds, seconds)
                assert s["cohort_mature"] is False  # the horizon runs past today
                assert s["cohort_conversion"] == round(s["reached_next"] / s["entered"], 6)

        whole = await client.get(
            "/v1/waterfall", params=PERIOD | {"source": sources[0], "horizon_days": 365}
        )
        (only,) = whole.json()["groups"]
        assert only["stages"] == groups[sources[0]]["stages"]

        as_csv = await client.get(
            "/v1/waterfall",
            params=PERIOD | {"by": "source", "horizon_days": 365},
            headers={"Accept": "text/csv"},
        )
        assert as_csv.headers["content-type"].startswith("text/csv")
        lines = as_csv.text.splitlines()
        assert lines[0].startswith("group,stage,entered,balance,next_stage")
        assert f"{sources[0]},inquiry,{groups[sources[0]]['stages'][0]['entered']}," in as_csv.text

        await _speed_leakage_attribution(client, sources, want)
        credited = await _credits(client)
        assert credited == await _credits_from_every_fact(settings.database_url)

        before = (await client.get("/v1/waterfall", params=PERIOD | {"by": "source"})).json()
        rebuilt = await cli.rebuild(settings)
        assert rebuilt >= len(events)
        after = (await client.get("/v1/waterfall", params=PERIOD | {"by": "source"})).json()
        assert after == before
        assert await _credits(client) == credited


async def _credits(client: httpx.AsyncClient) -> dict[tuple[Any, ...], int]:
    """The attribution report by source, per (model, source, kind): minor units."""
    answer = (await client.get("/v1/attribution", params=PERIOD | {"by": "source"})).json()
    out = {}
    for c in answer["credits"]:
        for kind in ("pipeline", "revenue"):
            if c[f"{kind}_minor"]:
                out[(c["model"], c["key"], kind)] = c[f"{kind}_minor"]
    return out


async def _credits_from_every_fact(database_url: str) -> dict[tuple[Any, ...], int]:
    """What attribution gives when every deal is credited at once from all the facts: what
    the writer's credits, kept batch by batch from events out of order, must add up to."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            raw = await driver(conn)
            leads = [r[0] for r in await raw.fetch("SELECT lead_id FROM analytics.leads")]
            deals, touches = await deals_of(raw, leads)
    finally:
        await engine.dispose()
    out = {}
    for model in domain.ATTRIBUTION_MODELS:
        for (_, kind, key), amount in domain.attribute(model, deals, touches, "source").items():
            if amount:
                out[(model, key, kind)] = amount
    return out


async def _speed_leakage_attribution(
    client: httpx.AsyncClient, sources: tuple[str, ...], want: dict[Stage, int]
) -> None:
    mqls = want[Stage.MQL]
    unworked = -(-mqls // histories.UNWORKED_EVERY)  # the 1st, 8th, 15th … MQL
    speed = {
        g["group"]: g
        for g in (await client.get("/v1/speed-to-lead", params=PERIOD | {"by": "source"})).json()[
            "groups"
        ]
    }
    mine = [speed[s] for s in sources if s in speed]
    assert sum(g["handoffs"] for g in mine) == mqls
    assert sum(g["touched"] for g in mine) == mqls - unworked
    delay = histories.DELAYS[Stage.INQUIRY] + histories.ASSIGN_AFTER
    for g in mine:
        assert (g["system"]["p50_s"], g["system"]["p90_s"]) == (delay.total_seconds(),) * 2
        rep = histories.FIRST_CALL_AFTER.total_seconds()
        assert (g["rep"]["p50_s"], g["rep"]["p90_s"]) == (rep, rep)
        assert g["rep"]["within_5m"] == 0 and g["rep"]["within_60m"] == g["touched"]
        assert g["total"]["beyond_60m"] == g["touched"]

    leaks: dict[str, int] = {}
    for source in sources:
        body = (
            await client.get("/v1/leakage", params=PERIOD | {"source": source, "limit": 5})
        ).json()
        for name in ("untouched_before_breach", "mql_unanswered", "recycled", "requalified"):
            leaks[name] = leaks.get(name, 0) + body[name]["count"]
            assert len(body[name]["lead_ids"]) == min(body[name]["count"], 5)
        leaks["rejected"] = leaks.get("rejected", 0) + sum(r["count"] for r in body["rejections"])
        assert {r["reason_code"] for r in body["rejections"]} <= set(histories.REJECTIONS)
    assert leaks == {
        "untouched_before_breach": unworked,
        "mql_unanswered": 0,
        "recycled": mqls - want[Stage.SAL],
        "requalified": 0,
        "rejected": mqls - want[Stage.SAL],
    }

    credits = (await client.get("/v1/attribution", params=PERIOD | {"by": "source"})).json()[
        "credits"
    ]
    for model in ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay"):
        mine_ = [c for c in credits if c["model"] == model and c["key"] in sources]
        assert (
            sum(c["pipeline_minor"] for c in mine_)
            == want[Stage.OPPORTUNITY] * histories.DEAL_MINOR
        )
        assert sum(c["revenue_minor"] for c in mine_) == want[Stage.WON] * histories.DEAL_MINOR

    for source in sources:
        rows = (
            await client.get("/v1/sourcing", params=PERIOD | {"source": source, "by": "source"})
        ).json()["rows"]
        assert {(r["origin"], r["share"]) for r in rows} <= {("marketing", 1.0)}


async def test_the_planner_answers_with_given_rates_and_names_what_is_missing(
    infra: Infra, database_url: str
) -> None:
    settings = AnalyticsSettings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.bootstrap,
        consumer_group=f"t-analytics-{uuid.uuid4().hex[:6]}",
        admin_token="test-analytics-admin",
        read_token=READER,
    )
    async with analytics(settings) as client:
        body = PLAN_EXAMPLE
        resp = await client.post("/v1/plan", json=body)
        assert resp.status_code == 200, resp.text
        stages = {s["stage"]: s for s in resp.json()["stages"]}
        assert stages["inquiry"]["needed"] == 6536 and stages["won"]["needed"] == 100

        csv = await client.post("/v1/plan", json=body, headers={"Accept": "text/csv"})
        assert csv.text.splitlines()[0].startswith("stage,needed,run_rate,gap")

        # an empty read model: nothing measured to stand in for a rate left out
        missing = await client.post("/v1/plan", json=body | {"rates": {}})
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["field"] == "rates.inquiry_to_mql"
        bad = await client.post("/v1/plan", json=body | {"revenue_target": -1})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "revenue_target"


async def across_migration(
    database_url: str, before: str, writes: list[tuple[str, dict[str, Any]]], *reads: str
) -> list[list[tuple[Any, ...]]]:
    """What ``reads`` find after an upgrade to the newest revision, in a read model that
    ``writes`` filled at revision ``before``."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA, before)
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            for sql, params in writes:
                await conn.execute(sa.text(sql), params)
        await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
        async with engine.connect() as conn:
            return [[tuple(r) for r in await conn.execute(sa.text(sql))] for sql in reads]
    finally:
        await engine.dispose()


async def test_the_second_migration_fills_what_stage_changes_now_keep(
    infra: Infra, database_url: str
) -> None:
    """A read model written before stage changes kept their next entry and their lead's
    dimensions gets both from the migration that adds them."""
    change = (
        "INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, to_stage) "
        "VALUES (:id, 'm-1', :at, 1, :stage)"
    )
    [rows] = await across_migration(
        database_url,
        "0001",
        [
            (
                "INSERT INTO analytics.leads (lead_id, source, owner_id) "
                "VALUES ('m-1', 'google', 'rep-ana')",
                {},
            ),
            *(
                (change, {"id": uuid.uuid4(), "at": T0 + timedelta(hours=hours), "stage": stage})
                for stage, hours in (("inquiry", 0), ("mql", 5), ("recycled", 9))
            ),
        ],
        "SELECT to_stage, funnel_rank, next_at, source, owner_id "
        "FROM analytics.stage_changes ORDER BY at",
    )
    assert rows == [
        ("inquiry", 0, T0 + timedelta(hours=5), "google", "rep-ana"),
        ("mql", 1, None, "google", "rep-ana"),
        ("recycled", None, None, "google", "rep-ana"),
    ]


async def test_the_third_migration_credits_the_deals_already_recorded(
    infra: Infra, database_url: str
) -> None:
    touch = (
        "INSERT INTO analytics.touches (event_id, lead_id, at, origin, kind, source) "
        "VALUES (:id, 'm-1', :at, 'marketing', 'page_view', :source)"
    )
    [rows] = await across_migration(
        database_url,
        "0002",
        [
            *(
                (touch, {"id": uuid.uuid4(), "at": T0 + timedelta(hours=hours), "source": source})
                for source, hours in (("google", 0), ("bing", 3))
            ),
            (
                "INSERT INTO analytics.feedback (event_id, lead_id, at, feedback, "
                "amount_minor, currency) VALUES (:id, 'm-1', :at, 'won', 1001, 'EUR')",
                {"id": uuid.uuid4(), "at": T0 + timedelta(days=2)},
            ),
        ],
        "SELECT model, key, kind, amount_minor FROM analytics.credits "
        "WHERE by = 'source' AND model IN ('linear', 'first_touch') ORDER BY model, key",
    )
    # linear: the odd unit to the earlier touch; first touch: all of it to google
    assert rows == [
        ("first_touch", "bing", "revenue", 0),
        ("first_touch", "google", "revenue", 1001),
        ("linear", "bing", "revenue", 500),
        ("linear", "google", "revenue", 501),
    ]


async def test_daily_counts_follow_every_change_and_periods_count_exactly(
    database_url: str,
) -> None:
    """The daily and monthly counts PostgreSQL keeps equal the stage changes grouped by day and
    by month, through inserts, the writer's updates of a lead's dimensions and deletes; a
    period's entries taken from whole months, whole days and the part days at its ends equal a
    count of the stage changes."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
    day = T0.replace(hour=0, minute=0, second=0, microsecond=0)
    moments = [
        day + timedelta(hours=h) for h in (-1, 1, 23.5, 24.5, 30, 47, 49, 71, 95, 200, 24 * 40)
    ]
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "lead": f"d-{i % 3}", "at": at, "stage": stage, "source": src}
        for i, at in enumerate(moments)
        for stage, src in (("inquiry", "google"), ("mql", None))
    ]
    grouped = sa.text(
        "SELECT (at AT TIME ZONE 'UTC')::date AS day, to_stage, source, owner_id, count(*) "
        "FROM analytics.stage_changes GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    )
    kept = sa.text(
        "SELECT day, to_stage, source, owner_id, sum(entered) FROM analytics.stage_days "
        "GROUP BY 1, 2, 3, 4 HAVING sum(entered) <> 0 ORDER BY 1, 2, 3, 4"
    )
    by_month = sa.text(
        "SELECT date_trunc('month', at AT TIME ZONE 'UTC')::date, to_stage, source, owner_id, "
        "count(*) FROM analytics.stage_changes GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    )
    kept_by_month = sa.text(
        "SELECT month, to_stage, source, owner_id, sum(entered) FROM analytics.stage_months "
        "GROUP BY 1, 2, 3, 4 HAVING sum(entered) <> 0 ORDER BY 1, 2, 3, 4"
    )
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, to_stage, "
                    "source) VALUES (:id, :lead, :at, 1, :stage, :source)"
                ),
                rows,
            )
        async with engine.begin() as conn:  # a lead's owner known later; a fact erased
            await conn.execute(
                sa.text(
                    "UPDATE analytics.stage_changes SET owner_id = 'rep-a' WHERE lead_id = 'd-1'"
                )
            )
            await conn.execute(
                sa.text("DELETE FROM analytics.stage_changes WHERE event_id = :id"),
                {"id": rows[0]["id"]},
            )
        async with engine.connect() as conn:
            assert (await conn.execute(kept)).all() == (await conn.execute(grouped)).all()
            months = (await conn.execute(kept_by_month)).all()
            assert months == (await conn.execute(by_month)).all()
            assert len({m[0] for m in months}) == 3

        def counted(since: Any, until: Any) -> dict[Stage, int]:
            out: dict[Stage, int] = {}
            for r in rows[1:]:
                if since <= r["at"] < until:
                    out[Stage(r["stage"])] = out.get(Stage(r["stage"]), 0) + 1
            return out

        for since, until in (
            (day + timedelta(hours=12), day + timedelta(hours=80)),  # part, whole, part
            (day, day + timedelta(days=3)),  # whole days only
            (day + timedelta(hours=2), day + timedelta(hours=20)),  # inside one day
            (day - timedelta(hours=2), day + timedelta(hours=96)),
            (day + timedelta(hours=3), day + timedelta(days=45)),  # a whole month inside
            (day - timedelta(days=22), day + timedelta(days=38)),  # starts on a month's day 1
        ):
            got = await views.run_rates(engine, views.Cut(since=since, until=until))
            assert got == counted(since, until), (since, until)
        rep = await views.run_rates(
            engine, views.Cut(since=day, until=day + timedelta(days=45), rep="rep-a")
        )
        assert rep == {
            Stage(r["stage"]): sum(
                1 for x in rows[1:] if x["lead"] == "d-1" and x["stage"] == r["stage"]
            )
            for r in rows[1:]
            if r["lead"] == "d-1"
        }
    finally:
        await engine.dispose()


async def test_the_fourth_migration_counts_the_stage_changes_already_recorded(
    database_url: str,
) -> None:
    change = (
        "INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, to_stage, source) "
        "VALUES (:id, 'm-4', :at, 1, :stage, 'google')"
    )
    [kept] = await across_migration(
        database_url,
        "0003",
        [
            (change, {"id": uuid.uuid4(), "at": T0 + timedelta(hours=hours), "stage": stage})
            for hours, stage in ((0, "inquiry"), (2, "mql"), (30, "inquiry"))
        ],
        "SELECT day, to_stage, entered FROM analytics.stage_days ORDER BY 1, 2",
    )
    assert kept == sorted(
        {
            (T0.date(), "inquiry", 1),
            ((T0 + timedelta(hours=2)).date(), "mql", 1),
            ((T0 + timedelta(hours=30)).date(), "inquiry", 1),
        }
    )


def _percentile(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont: linear between the two nearest ranks."""
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _bucket(at: Any, by: str | None) -> str | None:
    if by is None:
        return None
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if by == "month":
        day = day.replace(day=1)
    elif by == "week":
        day -= timedelta(days=day.weekday())
    return str(day.strftime("%Y-%m-%d"))


async def test_the_waterfall_by_time_and_source_equals_its_entries_counted_one_by_one(
    database_url: str,
) -> None:
    """Entries, reached, velocity and balances of a waterfall by month, week, day, source and
    none, over a period with part days at both ends, equal what the stage changes and lead rows
    give counted one by one in Python."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
    rng = random.Random(3)
    funnel = [s.value for s in histories.FUNNEL]
    changes: list[dict[str, Any]] = []
    leads: list[dict[str, Any]] = []
    for i in range(300):
        at = T0 + timedelta(minutes=rng.randrange(80 * 24 * 60))
        steps = [at]
        for _ in range(rng.randrange(4)):
            steps.append(steps[-1] + timedelta(minutes=rng.randrange(1, 20 * 24 * 60)))
        source = rng.choice(("google", "bing", None))
        for rank, when in enumerate(steps):
            nxt = steps[rank + 1] if rank + 1 < len(steps) else None
            changes.append(
                {
                    "id": uuid.uuid4(),
                    "lead": f"w-{i}",
                    "at": when,
                    "stage": funnel[rank],
                    "rank": rank,
                    "next": nxt,
                    "source": source,
                }
            )
        leads.append({"lead": f"w-{i}", "stage": funnel[len(steps) - 1], "source": source})
    engine = make_engine(database_url, server_settings=views.SERVER_SETTINGS)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, to_stage, "
                    "funnel_rank, next_at, source) "
                    "VALUES (:id, :lead, :at, 1, :stage, :rank, :next, :source)"
                ),
                changes,
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO analytics.leads (lead_id, stage, source) "
                    "VALUES (:lead, :stage, :source)"
                ),
                leads,
            )
        since, until = T0 + timedelta(days=3, hours=7), T0 + timedelta(days=65, hours=3)
        horizon = timedelta(days=10)
        for by in ("month", "week", "day", "source", None):
            want: dict[tuple[str | None, str], dict[str, Any]] = {}
            for c in changes:
                if since <= c["at"] < until:
                    group = c["source"] if by == "source" else _bucket(c["at"], by)
                    w = want.setdefault((group, c["stage"]), {"entered": 0, "spans": []})
                    w["entered"] += 1
                    if c["next"] is not None and c["next"] - c["at"] <= horizon:
                        w["spans"].append((c["next"] - c["at"]).total_seconds())
            balances: dict[tuple[str | None, str], int] = {}
            for lead in leads:
                key = (lead["source"] if by == "source" else None, lead["stage"])
                balances[key] = balances.get(key, 0) + 1
            groups = await views.waterfall(
                engine,
                views.Cut(since=since, until=until),
                by=by,
                horizon=horizon,
                now=until,
            )
            got_groups = {g["group"] for g in groups}
            assert got_groups == {g for g, _ in want} | {g for g, _ in balances}, by
            for g in groups:
                for s in g["stages"]:
                    w = want.get((g["group"], s["stage"]), {"entered": 0, "spans": []})
                    assert s["entered"] == w["entered"], (by, g["group"], s["stage"])
                    assert s["balance"] == balances.get((g["group"], s["stage"]), 0)
                    if s["next_stage"] is None:
                        continue
                    assert s["reached_next"] == len(w["spans"]), (by, g["group"], s["stage"])
                    spans = w["spans"]
                    assert (s["velocity_p50_s"], s["velocity_p90_s"]) == (
                        (round(_percentile(spans, 0.5), 3), round(_percentile(spans, 0.9), 3))
                        if spans
                        else (None, None)
                    ), (by, g["group"], s["stage"])
    finally:
        await engine.dispose()


async def test_a_batch_writes_each_stage_change_once_as_the_refresh_leaves_it(
    database_url: str,
) -> None:
    """A batch's stage changes are inserted with their leads' dimensions and next entries, not
    inserted bare and then updated (each update rewrites the row, its indexes and the rollups):
    nothing updates them, and the refresh finds nothing to change."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
    people = histories.leads(40, T0, timedelta(days=2), seed=29)
    events = list(histories.history(people, seed=29))
    updated = sa.text("SELECT pg_stat_get_xact_tuples_updated('analytics.stage_changes'::regclass)")
    engine = make_engine(database_url)
    try:
        uow = AnalyticsUnitOfWork(engine)
        async with uow:
            await uow.add(domain.facts_of(events))
            assert await uow.conn.scalar(updated) == 0
            await uow.commit()
        async with engine.begin() as conn:
            leads = [p.lead_id for p in people]
            stored = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM analytics.stage_changes WHERE lead_id = ANY(:leads) "
                    "AND owner_id IS NOT NULL AND next_at IS NOT NULL"
                ),
                {"leads": leads},
            )
            assert stored  # dimensions and next entries are there to be checked
            refresh = await conn.execute(_REFRESH_STAGES, {"leads": leads, "written": []})
            assert refresh.rowcount == 0
    finally:
        await engine.dispose()


async def test_a_batch_writes_each_lead_row_once(database_url: str) -> None:
    """A batch with more than one kind of a lead's facts (first touch, assignment, stage) writes
    its row once (one row version, its indexes and the balances' trigger once), not once per
    kind: new leads are inserted and not updated, and a later batch updates each at most once."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
    people = histories.leads(40, T0, timedelta(days=2), seed=31)
    events = sorted(histories.history(people, seed=31), key=lambda e: e.occurred_at)
    half = len(events) // 2
    updated = sa.text("SELECT pg_stat_get_xact_tuples_updated('analytics.leads'::regclass)")
    engine = make_engine(database_url)
    try:
        for batch, most in ((events[:half], 0), (events[half:], None)):
            facts = domain.facts_of(batch)
            assert (facts.firsts.keys() | facts.owners.keys()) & facts.stages.keys()
            uow = AnalyticsUnitOfWork(engine)
            async with uow:
                await uow.add(facts)
                leads = facts.firsts.keys() | facts.owners.keys() | facts.stages.keys()
                assert await uow.conn.scalar(updated) <= (len(leads) if most is None else most)
                await uow.commit()
    finally:
        await engine.dispose()


async def test_only_leads_known_before_a_batch_have_their_stage_changes_refreshed(
    database_url: str,
) -> None:
    """A batch of new leads writes their stage changes right and refreshes none; a later batch
    that gives known leads an owner refreshes theirs, and every stage change ends with its
    lead's dimensions."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
    people = histories.leads(40, T0, timedelta(days=2), seed=37)
    events = sorted(histories.history(people, seed=37), key=lambda e: e.occurred_at)
    half = len(events) // 2
    refreshes: list[str] = []
    engine = make_engine(database_url)

    @sa.event.listens_for(engine.sync_engine, "before_cursor_execute")
    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("UPDATE analytics.stage_changes"):
            refreshes.append(statement)

    stale = sa.text(
        "SELECT count(*) FROM analytics.stage_changes s JOIN analytics.leads l USING (lead_id) "
        "WHERE (s.source, s.campaign, s.segment, s.territory, s.team_id, s.owner_id) "
        "IS DISTINCT FROM (l.source, l.campaign, l.segment, l.territory, l.team_id, l.owner_id)"
    )
    try:
        for batch, refreshed in ((events[:half], False), (events[half:], True)):
            uow = AnalyticsUnitOfWork(engine)
            async with uow:
                await uow.add(domain.facts_of(batch))
                await uow.commit()
            assert bool(refreshes) is refreshed
            async with engine.connect() as conn:
                assert await conn.scalar(stale) == 0
    finally:
        await engine.dispose()


async def test_balances_follow_every_write_of_a_lead_row(database_url: str) -> None:
    """The balances PostgreSQL keeps equal the lead rows counted by stage and dimensions,
    through the writer's upserts (new rows and changed ones), updates and deletes."""
    await asyncio.to_thread(upgrade, "analytics", database_url, orm.SCHEMA)
    upsert = sa.text(
        "INSERT INTO analytics.leads (lead_id, stage, source, owner_id) "
        "VALUES (:lead, :stage, :source, :owner) ON CONFLICT (lead_id) DO UPDATE "
        "SET stage = EXCLUDED.stage, owner_id = EXCLUDED.owner_id"
    )
    counted = sa.text(
        "SELECT stage, source, owner_id, count(*) FROM analytics.leads "
        "WHERE stage IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    )
    kept = sa.text(
        "SELECT stage, source, owner_id, sum(leads) FROM analytics.stage_balances "
        "GROUP BY 1, 2, 3 HAVING sum(leads) <> 0 ORDER BY 1, 2, 3"
    )
    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                upsert,
                [
                    {"lead": f"b-{i}", "stage": "inquiry", "source": s, "owner": None}
                    for i, s in enumerate(("google", "google", None, "bing"))
                ],
            )
            await conn.execute(
                sa.text("INSERT INTO analytics.leads (lead_id, source) VALUES ('b-9', 'bing')")
            )
        async with engine.begin() as conn:
            await conn.execute(
                upsert,
                [
                    {"lead": "b-0", "stage": "mql", "source": "google", "owner": "rep-a"},
                    {"lead": "b-4", "stage": "mql", "source": None, "owner": "rep-a"},
                ],
            )
            await conn.execute(
                sa.text("UPDATE analytics.leads SET stage = 'sal' WHERE lead_id = 'b-9'")
            )
            await conn.execute(sa.text("DELETE FROM analytics.leads WHERE lead_id = 'b-1'"))
        async with engine.connect() as conn:
            got = (await conn.execute(kept)).all()
            assert got == (await conn.execute(counted)).all()
            assert len(got) == 5
    finally:
        await engine.dispose()


async def test_the_fifth_migration_counts_the_leads_and_months_already_recorded(
    database_url: str,
) -> None:
    change = (
        "INSERT INTO analytics.stage_changes (event_id, lead_id, at, cycle, to_stage) "
        "VALUES (:id, 'm-5', :at, 1, 'inquiry')"
    )
    kept, months = await across_migration(
        database_url,
        "0004",
        [
            (
                "INSERT INTO analytics.leads (lead_id, stage, source) VALUES "
                "('m-5', 'mql', 'google'), ('m-6', 'mql', 'google'), ('m-7', NULL, 'bing')",
                {},
            ),
            *(
                (change, {"id": uuid.uuid4(), "at": T0 + timedelta(days=days)})
                for days in (0, 1, 40)
            ),
        ],
        "SELECT stage, source, leads FROM analytics.stage_balances",
        "SELECT month, entered FROM analytics.stage_months ORDER BY 1",
    )
    assert kept == [("mql", "google", 2)]
    later = (T0 + timedelta(days=40)).date().replace(day=1)
    assert months == [(T0.date().replace(day=1), 2), (later, 1)]
