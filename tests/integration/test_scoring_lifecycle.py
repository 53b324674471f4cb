"""scoring on real Kafka and PostgreSQL: the whole funnel, model reloads, time and erasure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from leadrelay_shared.codec import decode, encode
from leadrelay_shared.contracts import (
    Event,
    LeadErased,
    Reason,
    RerouteRequested,
    SlaBreached,
    StageChanged,
    Topics,
)
from leadrelay_shared.db import make_engine
from leadrelay_shared.kafka import make_producer, send_record
from leadrelay_shared.migrate import upgrade
from scoring.adapters import orm
from scoring.bootstrap import create_app
from scoring.config import default_text
from scoring.settings import ScoringSettings
from tests.factories import assigned, engagement, feedback, form
from tests.infra import Infra
from tests.integration.helpers import leadrelay, read_to_end, settled, state

ADMIN, READER = "test-scoring-admin", "test-scoring-reader"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}

pytestmark = pytest.mark.integration


class Scoring:
    def __init__(self, client: httpx.AsyncClient, bootstrap: str) -> None:
        self.client = client
        self.bootstrap = bootstrap
        self.producer = make_producer(bootstrap, client_id="scoring-test")

    async def send(self, *events: Event) -> None:
        for event in events:
            await send_record(self.producer, encode(event), 5)

    async def lead_when(
        self, lead_id: str, ok: Callable[[dict[str, Any]], bool], timeout_s: float = 20
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        body: dict[str, Any] = {}
        while asyncio.get_running_loop().time() < deadline:
            resp = await self.client.get(f"/v1/leads/{lead_id}")
            if resp.status_code == 200:
                body = resp.json()
                if ok(body):
                    return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"lead {lead_id} did not reach the expected state: {body}")

    async def stage_events(self, lead_id: str) -> list[Event]:
        records = await read_to_end(
            self.bootstrap, Topics.SCORING, lambda r: r.key == lead_id.encode()
        )
        return [decode(list(r.headers), r.value, r.key) for r in records]


@asynccontextmanager
async def scoring(infra: Infra, database_url: str, **overrides: Any) -> AsyncIterator[Scoring]:
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
    settings = ScoringSettings(
        database_url=database_url,
        kafka_bootstrap_servers=infra.bootstrap,
        consumer_group=f"t-{uuid.uuid4()}",
        relay_poll_interval_s=0.1,
        admin_token=ADMIN,
        read_token=READER,
        **overrides,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://s",
            headers={"Authorization": f"Bearer {READER}"},
        )
        running = Scoring(client, infra.bootstrap)
        await running.producer.start()
        try:
            yield running
        finally:
            await running.producer.stop()
            await client.aclose()


def stage_is(stage: str, cycle: int | None = None) -> Callable[[dict[str, Any]], bool]:
    return lambda b: b["stage"] == stage and (cycle is None or b["cycle"] == cycle)


async def test_full_lifecycle_inquiry_to_won_with_a_recycle(
    infra: Infra, database_url: str
) -> None:
    # Stamped now: the service scores at the real clock, and a form fill stamped days ago would
    # have decayed below its 30 points.
    at = datetime.now(UTC)
    async with scoring(infra, database_url) as s:
        first = form(title="VP Engineering", company_size=250, at=at)
        lead = first.lead_id
        await s.send(first)
        body = await s.lead_when(lead, stage_is("mql", 1))
        assert body["fit_grade"] == "A" and body["engagement_score"] == 30
        await s.send(feedback(lead, "accepted", at=at))
        await s.lead_when(lead, stage_is("sal"))
        rejected = feedback(lead, "rejected", reason="bad_timing", at=at)
        await s.send(rejected, first)  # + a redelivery
        body = await s.lead_when(lead, stage_is("recycled"))
        assert body["engagement_score"] == 0
        await s.send(engagement(lead, "demo_requested", at=at))  # new engagement: re-qualifies
        await s.lead_when(lead, stage_is("mql", 2))
        await s.send(
            feedback(lead, "accepted", at=at),
            feedback(lead, "converted", opportunity_id="006-deal", at=at),
            feedback(lead, "won", at=at),
        )
        body = await s.lead_when(lead, stage_is("won"))

        passes = {p["cycle"]: [st["to_stage"] for st in p["stages"]] for p in body["passes"]}
        assert passes == {
            0: ["inquiry"],
            1: ["mql", "sal", "recycled"],
            2: ["mql", "sal", "sql", "opportunity", "won"],
        }
        recycled = body["passes"][1]["stages"][2]
        assert recycled["actor"] == "sales"
        assert recycled["reasons"][0]["rule_id"] == "feedback.rejected.bad_timing"

        timeline = (await s.client.get(f"/v1/leads/{lead}/timeline")).json()["entries"]
        kinds = [e["kind"] for e in timeline]
        assert kinds.count("form_submitted") == 1  # the redelivered form counted once
        assert kinds.count("feedback") == 5 and "engagement" in kinds
        scored = next(e for e in timeline if e["kind"] == "scored")
        assert {c["rule_id"] for c in scored["detail"]["fit"]} >= {
            "fit.title.senior",
            "fit.size.core",
        }

        # Every stage change reached Kafka through the outbox, in order, with its reasons.
        async def changes() -> list[str]:
            return [e.to_stage for e in await s.stage_events(lead) if isinstance(e, StageChanged)]

        deadline = asyncio.get_running_loop().time() + 10
        while len(await changes()) < 9 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
        assert await changes() == [
            "inquiry",
            "mql",
            "sal",
            "recycled",
            "mql",
            "sal",
            "sql",
            "opportunity",
            "won",
        ]


async def test_model_reload_timers_and_erasure(
    infra: Infra, database_url: str, tmp_path: Path
) -> None:
    model_file = tmp_path / "model.yaml"
    model_file.write_text(default_text())
    async with scoring(
        infra,
        database_url,
        model_path=model_file,
        model_reload_interval_s=0.1,
        timer_interval_s=0.2,
    ) as s:
        assert (await s.client.get("/v1/scoring/model")).json()["version"] == "default-2026.11"

        # A broken edit is refused and the active model stays.
        model_file.write_text("version: broken\ngrades: {A: 1}\n")
        await asyncio.sleep(0.5)
        assert (await s.client.get("/v1/scoring/model")).json()["version"] == "default-2026.11"

        # A new version, whose timers recycle an unaccepted MQL after about a second.
        fast = (
            default_text()
            .replace('version: "default-2026.11"', "version: fast-timers")
            .replace("mql_unaccepted_recycle_days: 14", "mql_unaccepted_recycle_days: 0.00001")
        )
        model_file.write_text(fast)
        deadline = asyncio.get_running_loop().time() + 10
        while (await s.client.get("/v1/scoring/model")).json()["version"] != "fast-timers":
            assert asyncio.get_running_loop().time() < deadline, "model was not reloaded"
            await asyncio.sleep(0.1)

        event = form(title="Director of IT")
        await s.send(event)
        body = await s.lead_when(event.lead_id, stage_is("recycled"))
        moves = body["passes"][1]["stages"]
        assert [m["to_stage"] for m in moves] == ["mql", "recycled"]
        assert moves[1]["actor"] == "time" and moves[1]["model_version"] == "fast-timers"
        assert body["model_version"] == "fast-timers"

        engine = make_engine(database_url, pool_size=1)
        async with engine.connect() as conn:
            versions = (
                (await conn.execute(sa.select(orm.models.c.version).order_by(orm.models.c.version)))
                .scalars()
                .all()
            )
        await engine.dispose()
        assert versions == ["default-2026.11", "fast-timers"]

        # Erasure: personal data leaves the profile and timeline; every service is told. Only
        # the admin token erases; the read token reads.
        refused = await s.client.post(
            f"/v1/leads/{event.lead_id}/erase", json={"requested_by": "dsr-42"}
        )
        assert refused.status_code == 401, refused.text
        assert (await s.client.get(f"/v1/leads/{event.lead_id}")).json()["erased_at"] is None
        resp = await s.client.post(
            f"/v1/leads/{event.lead_id}/erase", json={"requested_by": "dsr-42"}, headers=AS_ADMIN
        )
        assert resp.status_code == 200, resp.text
        body = (await s.client.get(f"/v1/leads/{event.lead_id}")).json()
        assert body["lead"]["email"] is None and body["lead"]["company"] == "Northwind"
        assert body["erased_at"] is not None and body["stage"] == "recycled"
        timeline = (await s.client.get(f"/v1/leads/{event.lead_id}/timeline")).text
        assert event.lead.email and event.lead.email not in timeline
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            found = await s.stage_events(event.lead_id)
            erased = [e for e in found if isinstance(e, LeadErased)]
            if erased or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert erased and erased[0].requested_by == "dsr-42"
        engine = make_engine(database_url, pool_size=1)
        async with engine.connect() as conn:
            payloads = (
                (
                    await conn.execute(
                        sa.select(orm.outbox.c.payload).where(orm.outbox.c.lead_id == event.lead_id)
                    )
                )
                .scalars()
                .all()
            )
        await engine.dispose()
        # published rows have left the outbox; one still waiting would have been scrubbed
        assert event.lead.email and event.lead.email not in repr(payloads)
        missing = await s.client.post(f"/v1/leads/{uuid.uuid4()}/erase", headers=AS_ADMIN)
        assert missing.status_code == 404


async def test_the_timeline_says_who_the_lead_went_to_and_what_its_sla_did(
    infra: Infra, database_url: str
) -> None:
    """router's ``lead.assigned`` and sla-monitor's ``sla.breached`` and ``reroute.requested``
    are on the lead's timeline beside scoring's own entries, each once."""
    at = datetime.now(UTC)
    async with scoring(infra, database_url) as s:
        first = form(title="VP Engineering", company_size=250, at=at)
        lead = first.lead_id
        handoff = assigned(lead, at=at).model_copy(update={"summary": "rep-ana is next"})
        breach = SlaBreached(
            lead_id=lead,
            occurred_at=at,
            clock_id=uuid.uuid4(),
            assignment_id=handoff.assignment_id,
            owner_id="rep-ana",
            team_id="sdr",
            policy_id="hot",
            started_at=at,
            due_at=at,
            reasons=(Reason(rule_id="sla.hot.breach", message="no call"),),
        )
        reroute = RerouteRequested(
            lead_id=lead,
            occurred_at=at,
            reason="deadline missed",
            requested_by="sla-monitor",
            assignment_id=handoff.assignment_id,
        )
        await s.send(first, handoff, breach, reroute, handoff)  # + a redelivery

        async def kinds() -> list[str]:
            resp = await s.client.get(f"/v1/leads/{lead}/timeline")
            return [e["kind"] for e in resp.json()["entries"]] if resp.status_code == 200 else []

        deadline = asyncio.get_running_loop().time() + 20
        while not {"assigned", "sla_breached", "reroute_requested"} <= set(await kinds()):
            assert asyncio.get_running_loop().time() < deadline, await kinds()
            await asyncio.sleep(0.1)
        entries = (await s.client.get(f"/v1/leads/{lead}/timeline")).json()["entries"]
    got = {
        e["kind"]: e
        for e in entries
        if e["kind"] in ("assigned", "sla_breached", "reroute_requested")
    }
    assert [e["kind"] for e in entries].count("assigned") == 1
    assert got["assigned"]["summary"] == "assigned to Rep-Ana (rep-ana), team sdr: rep-ana is next"
    assert got["assigned"]["detail"]["assignment_id"] == str(handoff.assignment_id)
    assert got["sla_breached"]["summary"] == "no call"
    assert (
        got["reroute_requested"]["summary"] == "re-route requested by sla-monitor: deadline missed"
    )


async def test_a_new_group_with_the_latest_offset_reset_skips_what_came_before(
    infra: Infra, database_url: str
) -> None:
    """``SCORING_CONSUMER_OFFSET_RESET`` reaches scoring's consumer (it was left at earliest)."""
    at = datetime.now(UTC)
    old = form(at=at)
    producer = make_producer(infra.bootstrap, client_id="scoring-test-old")
    await producer.start()
    try:
        await send_record(producer, encode(old), 5)
    finally:
        await producer.stop()
    async with scoring(infra, database_url, consumer_offset_reset="latest") as s:
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # until the consumer has its positions: a new lead is scored
            new = form(at=at)
            await s.send(new)
            await asyncio.sleep(0.5)
            if (await s.client.get(f"/v1/leads/{new.lead_id}")).status_code == 200:
                break
            assert asyncio.get_running_loop().time() < deadline
        assert (await s.client.get(f"/v1/leads/{old.lead_id}")).status_code == 404


async def test_a_what_if_replays_the_leads_as_they_were_scored_and_changes_nothing(
    infra: Infra,
    database_url: str,
    tmp_path: Path,
) -> None:
    """The leads scored by the service, re-scored under its own model, end where the service
    left them; under a candidate that makes grade B from 40 points, the one lead of 40 becomes
    an MQL. Neither touches a table or a topic."""
    now = datetime.now(UTC)
    suffix = uuid.uuid4().hex[:8]
    buyer = form(f"vp-{suffix}@northwind.example", at=now)
    analyst = form(f"analyst-{suffix}@contoso.example", title="Analyst", at=now)
    analyst = analyst.model_copy(update={"utm": {"utm_source": "ads", "utm_campaign": "spring"}})
    student = form(f"{suffix}@gmail.com", at=now)
    candidate = default_text().replace(
        "grades: {A: 70, B: 50, C: 30, D: 15}", "grades: {A: 70, B: 40, C: 30, D: 15}"
    )
    engine = make_engine(database_url)
    try:
        async with scoring(infra, database_url) as s:
            await s.send(
                buyer,
                analyst,
                engagement(analyst.lead_id, url="https://x.example/pricing", at=now),
                student,
                feedback(buyer.lead_id, "accepted", at=now),
            )
            stored = {
                buyer.lead_id: await s.lead_when(buyer.lead_id, stage_is("sal")),
                analyst.lead_id: await s.lead_when(
                    analyst.lead_id, lambda b: b["engagement_score"] > 30
                ),
                student.lead_id: await s.lead_when(student.lead_id, stage_is("inquiry")),
            }
            before = await settled(engine, orm.metadata, infra.bootstrap)

            active = (await s.client.get("/v1/scoring/model")).json()["version"]
            same = await s.client.post(
                "/v1/scoring/simulate", params={"days": 1, "leads": "all"}, content=default_text()
            )
            assert same.status_code == 200, same.text
            body = same.json()
            assert body["active_version"] == active and body["leads_changed"] == 0
            mine = {r["lead_id"]: r for r in body["leads"] if r["lead_id"] in stored}
            assert len(mine) == 3
            for lead_id, row in mine.items():
                kept = stored[lead_id]
                assert (row["stage_before"], row["fit_before"], row["grade_before"]) == (
                    kept["stage"],
                    kept["fit_score"],
                    kept["fit_grade"],
                )
                assert (row["stage_after"], row["fit_after"]) == (kept["stage"], kept["fit_score"])

            changed = await s.client.post(
                "/v1/scoring/simulate", params={"days": 1}, content=candidate
            )
            rows = {r["lead_id"]: r for r in changed.json()["leads"]}
            assert rows[analyst.lead_id]["stage_after"] == "mql"
            assert rows[analyst.lead_id]["mql_after"] and not rows[analyst.lead_id]["mql_before"]
            assert buyer.lead_id not in rows and student.lead_id not in rows
            spring = [g for g in changed.json()["by_source"] if g["campaign"] == "spring"]
            assert spring[0]["mql_change"] >= 1
            assert suffix not in changed.text  # lead ids and scores: no addresses

            as_csv = await s.client.post(
                "/v1/scoring/simulate",
                params={"days": 1},
                content=candidate,
                headers={"Accept": "text/csv"},
            )
            assert as_csv.text.startswith("lead_id,source,campaign,stage_before")
            bad = await s.client.post("/v1/scoring/simulate", content="version: x\ngrades: 3\n")
            assert bad.status_code == 422 and "grades" in bad.json()["detail"]

            # the command line says the same, and writes the per-lead CSV
            model, out = tmp_path / "candidate.yaml", tmp_path / "leads.csv"
            model.write_text(candidate)
            argv = ["scoring", "simulate", str(model), "--days", "1"]
            ran = await leadrelay(database_url, *argv, "--csv", str(out))
            assert ran.returncode == 0, ran.stderr
            assert changed.json()["summary"][1] in ran.stdout
            assert analyst.lead_id in out.read_text()
            refused = await leadrelay(database_url, *argv[:3], "--days", "0")
            assert refused.returncode == 2 and "--days" in refused.stderr

            assert await state(engine, orm.metadata, infra.bootstrap) == before
    finally:
        await engine.dispose()


async def test_timeline_entries_before_revision_0005_get_their_inputs(database_url: str) -> None:
    """Entries written before the timeline kept an event's type, source system and feedback as
    fields get them from their summaries."""
    await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA, revision="0004")
    engine = make_engine(database_url)
    rows = [
        ("engagement", "webinar attended", {"url": None}),
        ("form_submitted", "form fill from hubspot", {"utm": {}}),
        ("feedback", "sales feedback: rejected (no budget)", {"reason_code": "no_budget"}),
    ]
    try:
        async with engine.begin() as conn:
            for kind, summary, detail in rows:
                await conn.execute(
                    orm.timeline.insert().values(
                        lead_id="l1",
                        at=datetime.now(UTC),
                        kind=kind,
                        summary=summary,
                        detail=detail,
                    )
                )
        await asyncio.to_thread(upgrade, "scoring", database_url, orm.SCHEMA)
        async with engine.connect() as conn:
            found = dict(
                (await conn.execute(sa.select(orm.timeline.c.kind, orm.timeline.c.detail))).all()
            )
    finally:
        await engine.dispose()
    assert found["engagement"]["engagement_type"] == "webinar_attended"
    assert found["form_submitted"]["source_system"] == "hubspot"
    assert found["feedback"] == {"reason_code": "no_budget", "feedback": "rejected"}
