"""What-if on the real router: a history routed by the service, replayed through its own
configuration and through a changed one, over the API, leaving every table and topic as it was."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from leadrelay_shared.db import make_engine
from router.adapters import orm
from tests.infra import Infra
from tests.integration.helpers import leadrelay, send, settled, state, wait_for
from tests.integration.routing import mql, router_app

pytestmark = pytest.mark.integration
LEADS = 60


async def test_a_simulation_is_faithful_changes_nothing_and_shows_a_pause(
    infra: Infra,
    database_url: str,
    tmp_path: Path,
) -> None:
    config = tmp_path / "routing.yaml"
    config.write_text(
        "version: sim-1\n"
        "reps: [{id: rep-a, name: A}, {id: rep-b, name: B}, {id: rep-c, name: C}]\n"
        "teams:\n"
        "  - {id: sdr, name: SDR, stages: [mql], members: [rep-a, rep-b, rep-c],\n"
        "     respect_working_hours: false}\n"
    )
    engine = make_engine(database_url)
    try:
        async with router_app(infra, database_url, config) as api:
            # several polls' worth, so batches share their time and their order matters
            for start in range(0, LEADS, 20):
                await send(infra.bootstrap, *(mql(i) for i in range(start, start + 20)))
            rerouted = mql(0).lead_id

            async def routed(n: int) -> bool:
                async with engine.connect() as conn:
                    count = await conn.scalar(
                        sa.select(sa.func.count()).select_from(orm.assignments)
                    )
                    return (count or 0) >= n

            assert await wait_for(lambda: routed(LEADS))
            reroute = await api.post(f"/v1/leads/{rerouted}/reroute", json={"reason": "on leave"})
            assert reroute.status_code == 200
            before = await settled(engine, orm.metadata, infra.bootstrap)

            current = (await api.get("/v1/routing/config")).json()["document"]
            same = await api.post("/v1/routing/simulate", params={"days": 1}, json=current)
            assert same.status_code == 200, same.text
            body = same.json()
            assert body["leads_replayed"] == LEADS + 1
            assert body["leads_changed"] == 0 and body["leads"] == []
            every = await api.post(
                "/v1/routing/simulate", params={"days": 1, "leads": "all"}, json=current
            )
            assert [r["owner_after"] for r in every.json()["leads"]] == [
                r["owner_before"] for r in every.json()["leads"]
            ]
            assert every.json()["leads"][-1]["kind"] == "reroute"

            # rep-b paused: each of its leads goes elsewhere, and the others move along
            paused = yaml.safe_load(config.read_text())
            paused["reps"][1]["paused"] = True
            changed = (
                await api.post(
                    "/v1/routing/simulate",
                    params={"days": 1, "leads": "all"},
                    content=yaml.safe_dump(paused),
                )
            ).json()
            rows = changed["leads"]
            assert all(r["owner_after"] != "rep-b" for r in rows)
            assert {r["lead_id"] for r in rows if r["owner_before"] == "rep-b"} <= {
                r["lead_id"] for r in rows if r["changed"]
            }
            reps = {r["rep_id"]: r for r in changed["reps"]}
            assert reps["rep-b"]["after"] == 0 and reps["rep-b"]["before"] >= LEADS // 3
            pool = changed["pools"][0]
            assert (pool["team_id"], pool["spread_before"]) == ("sdr", 1)
            assert any("would get another owner" in line for line in changed["summary"])

            as_csv = await api.post(
                "/v1/routing/simulate",
                params={"days": 1},
                content=yaml.safe_dump(paused),
                headers={"Accept": "text/csv"},
            )
            lines = list(csv.DictReader(io.StringIO(as_csv.text)))
            assert len(lines) == LEADS + 1 and lines[0]["owner_before"]

            # a window that is not one is refused, naming the field
            for params, field in (
                ({"days": 0}, "days"),
                ({"from": "2030-01-01T00:00:00Z"}, "from"),
            ):
                bad = await api.post("/v1/routing/simulate", params=params, json=current)
                assert bad.status_code == 422 and field in bad.text, bad.text

            # the command line says the same, and writes the per-lead CSV
            candidate, out = tmp_path / "paused.yaml", tmp_path / "leads.csv"
            candidate.write_text(yaml.safe_dump(paused))
            ran = await leadrelay(
                database_url,
                "routing",
                "simulate",
                str(candidate),
                "--days",
                "1",
                "--csv",
                str(out),
            )
            assert ran.returncode == 0, ran.stderr
            printed = ran.stdout
            assert f"{LEADS + 1} routed leads" in printed
            assert f"{changed['leads_changed']} would get another owner" in printed
            assert len(out.read_text().splitlines()) == LEADS + 2

            assert await state(engine, orm.metadata, infra.bootstrap) == before
    finally:
        await engine.dispose()
