"""Routing decisions at fixed times: matching, territories, strategies, capacity, availability,
re-routing, and the handler with fake repositories."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadrelay_shared.contracts import (
    LeadAssigned,
    LeadErased,
    LeadSnapshot,
    Reason,
    RerouteRequested,
    Stage,
    StageChanged,
)
from leadrelay_shared.privacy import ERASED
from router import admin, config, domain, handlers
from router.config import RoutingConfig, compile_config, from_document
from router.errors import ConfigError
from router.matching import AccountIndex, AccountRecord, normalise_company
from tests.factories import T0, form
from tests.unit.router.fakes import FakeRouterUow

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXVuaXQtdGVzdHM="
# Monday 23 November 2026, 10:00 in Paris.
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def build(**overrides: Any) -> RoutingConfig:
    doc: dict[str, Any] = {
        "version": "t1",
        "timezone": "Europe/Paris",
        "reps": [{"id": f"rep-{i}", "name": f"Rep {i}"} for i in range(4)],
        "teams": [
            {
                "id": "sdr",
                "name": "SDR",
                "stages": ["mql"],
                "members": [f"rep-{i}" for i in range(4)],
            }
        ],
        "webhooks": [{"id": "crm", "url": "http://crm.invalid/hook", "secret": SECRET}],
    }
    doc.update(overrides)
    return compile_config(from_document(doc))


def lead(**fields: Any) -> LeadSnapshot:
    base = {
        "email": "ann@northwind.example",
        "email_domain": "northwind.example",
        "company": "Northwind",
        "country": "FR",
    }
    return LeadSnapshot(**(base | fields))


def assign_many(
    cfg: RoutingConfig,
    n: int,
    now: datetime = MONDAY_10,
    loads: dict[str, dict[date, int]] | None = None,
) -> Counter[str]:
    pointer, counts, loads = 0, Counter[str](), loads if loads is not None else {}
    for _ in range(n):
        d = domain.decide(lead(), Stage.MQL, cfg, pointer, loads, now)
        assert d.rep_id is not None
        counts[d.rep_id] += 1
        pointer = d.pointer_after or 0
        day = domain.local_day(cfg.reps[d.rep_id], now)
        loads.setdefault(d.rep_id, {})[day] = loads.get(d.rep_id, {}).get(day, 0) + 1
    return counts


# ---- strategies -------------------------------------------------------------------------------


def test_round_robin_is_fair_over_thousands() -> None:
    cfg = build()
    pointer, counts = 0, Counter[str]()
    for _ in range(3001):
        d = domain.decide(lead(), Stage.MQL, cfg, pointer, {}, MONDAY_10)
        assert d.rep_id is not None and d.strategy == "round_robin"
        counts[d.rep_id] += 1
        pointer = d.pointer_after or 0
        assert max(counts.values()) - min(counts.get(f"rep-{i}", 0) for i in range(4)) <= 1


def test_weighted_round_robin_follows_weights_smoothly() -> None:
    cfg = build(
        teams=[
            {
                "id": "sdr",
                "name": "SDR",
                "strategy": "weighted_round_robin",
                "members": [{"rep": "rep-0", "weight": 3}, "rep-1"],
            }
        ]
    )
    assert cfg.teams["sdr"].sequence == ("rep-0", "rep-0", "rep-1", "rep-0")
    counts = assign_many(cfg, 4000)
    assert counts == {"rep-0": 3000, "rep-1": 1000}


def test_least_loaded_picks_the_emptiest_then_round_robin_order() -> None:
    cfg = build(
        teams=[
            {
                "id": "sdr",
                "name": "SDR",
                "strategy": "least_loaded",
                "members": ["rep-0", "rep-1", "rep-2"],
            }
        ]
    )
    today = date(2026, 11, 23)
    loads = {"rep-0": {today: 5}, "rep-1": {today: 2}, "rep-2": {today: 2}}
    d = domain.decide(lead(), Stage.MQL, cfg, 0, loads, MONDAY_10)
    assert d.rep_id == "rep-1" and "fewest leads" in d.summary and "(2 today" in d.summary
    d = domain.decide(lead(), Stage.MQL, cfg, 2, loads, MONDAY_10)
    assert d.rep_id == "rep-2"
    counts = assign_many(cfg, 301, loads=loads)
    totals = [loads[r][today] for r in ("rep-0", "rep-1", "rep-2")]
    assert max(totals) - min(totals) <= 1 and sum(counts.values()) == 301


def test_capacity_per_day_and_week_in_the_reps_time_zone() -> None:
    cfg = build(
        reps=[
            {"id": "rep-0", "name": "A", "capacity": {"day": 2}},
            {"id": "rep-1", "name": "B", "capacity": {"week": 3}},
        ],
        teams=[{"id": "sdr", "name": "SDR", "members": ["rep-0", "rep-1"]}],
    )
    monday = date(2026, 11, 23)
    loads = {"rep-0": {monday: 2}, "rep-1": {date(2026, 11, 20): 9, monday: 1}}
    d = domain.decide(lead(), Stage.MQL, cfg, 0, loads, MONDAY_10)
    assert d.rep_id == "rep-1"
    assert [(s.rep_id, s.rule_id) for s in d.skipped] == [("rep-0", "rep.capacity_day")]
    loads["rep-1"][monday] = 3  # last Friday's leads are another week
    d = domain.decide(lead(), Stage.MQL, cfg, 0, loads, MONDAY_10)
    assert d.rep_id is None and d.queue == "unassigned"
    assert {s.rule_id for s in d.skipped} == {"rep.capacity_day", "rep.capacity_week"}


def test_availability_hours_absence_pause_and_deactivation_are_skipped_and_said() -> None:
    cfg = build(
        reps=[
            {"id": "off", "name": "Off", "active": False},
            {"id": "paused", "name": "P", "paused": True},
            {
                "id": "away",
                "name": "Away",
                "out_of_office": [{"from": "2026-11-20", "to": "2026-11-27"}],
            },
            {"id": "nyc", "name": "NY", "timezone": "America/New_York"},
            {"id": "paris", "name": "Paris"},
        ],
        teams=[
            {
                "id": "sdr",
                "name": "SDR",
                "members": ["off", "paused", "away", "nyc", "paris"],
                "fallback": {"rep": "off"},
            }
        ],
    )
    d = domain.decide(lead(), Stage.MQL, cfg, 0, {}, MONDAY_10)  # 04:00 in New York
    assert d.rep_id == "paris" and d.pointer_before == 0 and d.pointer_after == 0
    assert [s.rule_id for s in d.skipped] == [
        "rep.deactivated",
        "rep.paused",
        "rep.out_of_office",
        "rep.off_hours",
    ]
    assert "Mon 04:00 America/New_York" in d.skipped[3].message
    afternoon = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)  # 10:30 NY, 16:30 Paris
    assert domain.decide(lead(), Stage.MQL, cfg, 0, {}, afternoon).rep_id == "nyc"
    saturday = datetime(2026, 11, 28, 10, tzinfo=UTC)
    d = domain.decide(lead(), Stage.MQL, cfg, 0, {}, saturday)
    assert d.rep_id == "off" and [r.rule_id for r in d.reasons][-2:] == [
        "team.nobody_available",
        "fallback.rep",
    ]


def test_dst_change_moves_the_working_day_with_the_clock() -> None:
    cfg = build(
        reps=[{"id": "nyc", "name": "NY", "timezone": "America/New_York"}],
        teams=[{"id": "sdr", "name": "SDR", "members": ["nyc"]}],
    )
    # 13:30 UTC is 09:30 in New York in summer (EDT) but 08:30 in winter (EST).
    summer = datetime(2026, 10, 30, 13, 30, tzinfo=UTC)
    winter = datetime(2026, 11, 2, 13, 30, tzinfo=UTC)
    assert domain.decide(lead(), Stage.MQL, cfg, 0, {}, summer).rep_id == "nyc"
    assert domain.decide(lead(), Stage.MQL, cfg, 0, {}, winter).rep_id is None


def test_re_route_excludes_the_previous_owner() -> None:
    cfg = build()
    d = domain.decide(lead(), Stage.MQL, cfg, 1, {}, MONDAY_10, exclude=("rep-1",))
    assert d.rep_id == "rep-2" and d.skipped[0].rule_id == "rep.excluded"


# ---- accounts and territories -----------------------------------------------------------------

ACCOUNTS = [
    AccountRecord("acc-1", "Acme Corporation", ("acme.com",), ("ACME Labs",), "ae-1"),
    AccountRecord("acc-2", "International Business Machines", ("ibm.com",), (), None),
    AccountRecord("acc-3", "Société Générale S.A.", ("socgen.example",), (), None),
    AccountRecord("acc-4", "Northwind Traders GmbH", (), (), None),
]


@pytest.mark.parametrize(
    ("domain_", "free", "company", "account", "method"),
    [
        ("acme.com", False, None, "acc-1", "domain"),
        ("eu.sales.acme.com", False, None, "acc-1", "subdomain"),
        ("acme.co.uk", False, None, "acc-1", "domain_alias"),
        ("gmail.com", True, "Acme, Inc.", "acc-1", "name"),
        ("gmail.com", True, "acme labs", "acc-1", "alias"),
        ("gmail.com", True, "I.B.M.", "acc-2", "acronym"),
        ("gmail.com", True, "Societe Generale", "acc-3", "name"),
        ("gmail.com", True, "Nortwind Traders", "acc-4", "fuzzy"),
        ("gmail.com", True, "Traders Northwind Ltd", "acc-4", "fuzzy"),
        ("gmail.com", True, "Southwind Logistics", None, None),
        ("acme.com.evil.example", False, None, None, None),
    ],
)
def test_lead_to_account_matching(
    domain_: str, free: bool, company: str | None, account: str | None, method: str | None
) -> None:
    index = AccountIndex(ACCOUNTS, threshold=90, domain_aliases={"acme.co.uk": "acme.com"})
    found = index.match(domain_, free, company)
    assert (found.account_id if found else None) == account
    assert (found.method if found else None) == method
    if found is not None and method == "fuzzy":
        assert 90 <= found.confidence <= 100 and "resembles" in found.detail


def test_company_normalisation() -> None:
    assert normalise_company("  The ACME Co., Ltd. ") == "acme"
    assert normalise_company("Ärzte & Partner GmbH") == "arzte and partner"


def test_matched_account_routes_to_its_owner_or_the_owners_sdr() -> None:
    cfg = build(
        reps=[
            {"id": "ae", "name": "AE", "sdr": "sdr-1"},
            {"id": "sdr-1", "name": "S"},
            {"id": "rep-0", "name": "R"},
        ],
        teams=[{"id": "sdr", "name": "SDR", "members": ["rep-0"]}],
        accounts=[
            {"id": "acc", "name": "Northwind", "domains": ["northwind.example"], "owner": "ae"}
        ],
    )
    d = domain.decide(lead(), Stage.MQL, cfg, 0, {}, MONDAY_10)
    assert d.rep_id == "sdr-1" and d.strategy == "account_owner"
    assert [r.rule_id for r in d.reasons] == [
        "account.domain",
        "account.owner_sdr",
        "territory.default",
        "owner.assigned",
    ]
    d = domain.decide(lead(), Stage.SQL, cfg, 0, {}, MONDAY_10)
    assert d.rep_id == "ae"
    away = [{"id": "ae", "name": "AE", "paused": True}, {"id": "rep-0", "name": "R"}]
    cfg = build(
        reps=away,
        teams=[{"id": "sdr", "name": "SDR", "stages": ["mql", "sql"], "members": ["rep-0"]}],
        accounts=[{"id": "acc", "name": "Northwind", "owner": "ae"}],
    )
    d = domain.decide(
        lead(email_domain="gmail.com", is_free_email=True), Stage.SQL, cfg, 0, {}, MONDAY_10
    )
    assert d.rep_id == "rep-0" and d.skipped[0].rule_id == "rep.paused"
    assert "owner.unavailable" in [r.rule_id for r in d.reasons]


def territories_config() -> RoutingConfig:
    return build(
        segments=[{"id": "smb", "max": 199}, {"id": "ent", "min": 1000}],
        reps=[{"id": r, "name": r} for r in ("a", "b", "c", "d")],
        teams=[
            {"id": t, "name": t, "members": [m]}
            for t, m in (("t-ent", "a"), ("t-paris", "b"), ("t-de", "c"), ("t-default", "d"))
        ],
        territories=[
            {
                "id": "fr-ent",
                "priority": 1,
                "countries": ["fr"],
                "segments": ["ent"],
                "teams": {"mql": "t-ent"},
            },
            {
                "id": "paris",
                "priority": 5,
                "countries": ["FR"],
                "postal_codes": ["75000-75999"],
                "teams": {"mql": "t-paris"},
            },
            {
                "id": "de-health",
                "priority": 5,
                "countries": ["DE"],
                "regions": ["Bavaria"],
                "industries": ["Healthcare"],
                "postal_codes": ["8*"],
                "teams": {"mql": "t-de"},
            },
            {"id": "fr-sql-only", "priority": 2, "countries": ["FR"], "teams": {"sql": "t-ent"}},
        ],
        default_teams={"mql": "t-default"},
    )


@pytest.mark.parametrize(
    ("fields", "territory", "rep"),
    [
        ({"company_size": 5000, "postal_code": "75011"}, "fr-ent", "a"),
        ({"company_size": 50, "postal_code": "75011"}, "paris", "b"),
        ({"company_size": 50, "postal_code": "69001"}, None, "d"),
        (
            {
                "country": "DE",
                "region": " bavaria",
                "industry": "healthcare",
                "postal_code": "80331",
            },
            "de-health",
            "c",
        ),
        (
            {"country": "DE", "region": "Bavaria", "industry": "Retail", "postal_code": "80331"},
            None,
            "d",
        ),
        (
            {
                "country": "DE",
                "region": "Bavaria",
                "industry": "Healthcare",
                "postal_code": "10115",
            },
            None,
            "d",
        ),
    ],
)
def test_territories_in_priority_order(
    fields: dict[str, Any], territory: str | None, rep: str
) -> None:
    d = domain.decide(lead(**fields), Stage.MQL, territories_config(), 0, {}, MONDAY_10)
    assert d.territory == territory and d.rep_id == rep
    rule_ids = [r.rule_id for r in d.reasons]
    assert ("territory.matched" if territory else "territory.default") in rule_ids
    if fields.get("country", "FR") == "FR" and territory != "fr-ent":
        assert "territory.no_team" in rule_ids  # fr-sql-only matched but takes no MQLs


def test_territories_without_countries_keep_their_priority_among_those_of_a_country() -> None:
    """Territories are indexed by country; a rule with no country applies to every lead, in its
    place in the priority order."""
    base = territories_config()
    cfg = build(
        **{
            **base.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            "territories": [
                *base.spec.model_dump(mode="json", by_alias=True, exclude_none=True)["territories"],
                {
                    "id": "ent-anywhere",
                    "priority": 3,
                    "segments": ["ent"],
                    "teams": {"mql": "t-de"},
                },
            ],
        }
    )
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({"company_size": 5000, "postal_code": "75011"}, "fr-ent"),  # priority 1 first
        ({"company_size": 5000, "country": "US"}, "ent-anywhere"),  # no rule for US
        ({"company_size": 5000, "country": None}, "ent-anywhere"),
        (
            {
                "country": "DE",
                "region": "Bavaria",
                "industry": "Healthcare",
                "postal_code": "80331",
                "company_size": 5000,
            },
            "ent-anywhere",
        ),  # 3 before 5
        (
            {
                "country": "DE",
                "region": "Bavaria",
                "industry": "Healthcare",
                "postal_code": "80331",
                "company_size": 50,
            },
            "de-health",
        ),
        ({"company_size": 50, "country": "us"}, None),
    ]
    for fields, expected in cases:
        d = domain.decide(lead(**fields), Stage.MQL, cfg, 0, {}, MONDAY_10)
        assert d.territory == expected, fields


# ---- configuration ----------------------------------------------------------------------------


def test_config_errors_name_the_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text(
        "version: x\nreps:\n  - {id: r, name: R}\nteams:\n  - id: a\n    name: A\n    members: []\n"
    )
    with pytest.raises(ConfigError, match=r"line 7: teams\[0\]\.members"):
        config.load(bad)
    bad.write_text(
        "version: x\nreps: [{id: r, name: R}]\nteams: [{id: a, name: A, members: [r]}]\n"
        "webhooks: [{id: w, url: 'http://x', secret: 'plain'}]\n"
    )
    with pytest.raises(ConfigError, match=r"line 4: webhooks\[0\]\.secret"):
        config.load(bad)
    bad.write_text(
        "version: x\nreps: [{id: r, name: R}]\n"
        "teams: [{id: a, name: A, members: [zz]}]\n"
        "territories: [{id: t, teams: {mql: nope}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        config.load(bad)
    assert "unknown rep 'zz'" in str(info.value) and "unknown team 'nope'" in str(info.value)


def test_accounts_csv_is_loaded_with_the_file_and_errors_name_the_row(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text(
        "id,name,domains,aliases,owner\nacc-1,Acme Inc,acme.com;acme.io,ACME Labs,r\n"
        "acc-2,Globex,,,\n"
    )
    (tmp_path / "routing.yaml").write_text(
        "version: x\nreps: [{id: r, name: R}]\nteams: [{id: a, name: A, members: [r]}]\n"
        "accounts_csv: accounts.csv\n"
    )
    cfg = config.load(tmp_path / "routing.yaml")
    assert len(cfg.accounts) == 2 and cfg.accounts.match("acme.io", False, None) is not None
    (tmp_path / "accounts.csv").write_text("id,name\nacc-1,\n")
    with pytest.raises(ConfigError, match="row 2: name"):
        config.load(tmp_path / "routing.yaml")


def test_version_changes_with_content_and_diff_names_what_changed() -> None:
    old = build()
    doc = admin.patch_rep(old.document(), "rep-1", {"paused": True})
    new = compile_config(from_document(doc))
    assert new.version != old.version and new.version.startswith("t1+")
    changes = admin.diff(old.document(), new.document())
    assert changes == {
        "reps": {
            "added": [],
            "removed": [],
            "changed": {"rep-1": {"paused": {"from": False, "to": True}}},
        }
    }
    assert admin.render(changes) == "~ reps/rep-1.paused: False -> True"
    with pytest.raises(ConfigError, match="not a field"):
        admin.patch_rep(old.document(), "rep-1", {"id": "x"})


def test_import_accounts_merges_or_replaces() -> None:
    cfg = build(accounts=[{"id": "a1", "name": "Old"}, {"id": "a2", "name": "Keep"}])
    doc, n = admin.import_accounts(cfg.document(), "id,name,domains\na1,New,new.example\n")
    assert n == 1 and [a["name"] for a in doc["accounts"]] == ["New", "Keep"]
    doc, _ = admin.import_accounts(cfg.document(), "id,name\na3,Only\n", "replace")
    assert [a["id"] for a in doc["accounts"]] == ["a3"]


def test_shipped_config_is_valid() -> None:
    from router.settings import DEFAULT_CONFIG

    loaded = config.load(DEFAULT_CONFIG)
    assert loaded.team_for(Stage.MQL) is not None and loaded.endpoints()


# ---- handler ----------------------------------------------------------------------------------


def stage_changed(to: Stage = Stage.MQL, **lead_fields: Any) -> StageChanged:
    f = form()
    snapshot = f.lead.model_copy(update=lead_fields)
    return StageChanged(
        lead_id=f.lead_id,
        occurred_at=T0,
        from_stage=Stage.INQUIRY,
        to_stage=to,
        reasons=(Reason(rule_id="mql.fit_threshold", message="fit"),),
        model_version="m1",
        cause_event_id=f.event_id,
        lead=snapshot,
    )


def always_open() -> RoutingConfig:
    return build(
        teams=[
            {
                "id": "sdr",
                "name": "SDR",
                "stages": ["mql"],
                "members": [f"rep-{i}" for i in range(4)],
                "respect_working_hours": False,
            }
        ]
    )


async def test_handler_assigns_emits_and_queues_one_webhook_idempotently() -> None:
    uow, cfg = FakeRouterUow(), always_open()
    event = stage_changed()
    await handlers.handle(event, uow=uow, config=cfg, now=lambda: T0)
    await handlers.handle(event, uow=uow, config=cfg, now=lambda: T0)
    assert [type(e) for e in uow.outbox] == [LeadAssigned]
    assigned = uow.outbox[0]
    assert isinstance(assigned, LeadAssigned) and assigned.owner.id == "rep-0"
    assert [r.rule_id for r in assigned.reasons] == [
        "mql.fit_threshold",
        "territory.default",
        "strategy.round_robin",
    ]
    assert assigned.summary and "rep-0 is next in round robin" in assigned.summary
    ((delivery_id, hook),) = uow.webhooks.items()
    assert delivery_id.startswith("msg_") and hook["payload"]["type"] == "lead.assigned"
    data = hook["payload"]["data"]
    assert data["owner"]["id"] == "rep-0" and data["assignment_id"] == str(assigned.assignment_id)
    assert data["summary"] == assigned.summary
    assert uow.pointers.positions == {"sdr": 1}
    (row,) = uow.assignments.rows
    assert row["decision"]["pointer_before"] == 0 and row["decision"]["pointer_after"] == 1
    assert row["config_version"] == cfg.version


async def test_a_batch_shares_the_pointer_and_loads() -> None:
    uow, cfg = FakeRouterUow(), always_open()
    events = [stage_changed(email=f"l{i}@x.example") for i in range(10)]
    events = [e.model_copy(update={"lead_id": f"lead-{i}"}) for i, e in enumerate(events)]
    await handlers.handle_batch(events, uow=uow, config=cfg, now=lambda: T0)
    owners = [e.owner.id for e in uow.outbox if isinstance(e, LeadAssigned)]
    assert owners == [f"rep-{i % 4}" for i in range(10)]
    assert uow.pointers.positions == {"sdr": 2}
    assert sum(n for days in uow.loads.days.values() for n in days.values()) == 10


async def test_reroute_gives_the_lead_to_the_next_rep_and_stale_requests_are_ignored() -> None:
    uow, cfg = FakeRouterUow(), always_open()
    event = stage_changed()
    (first,) = await handlers.handle(event, uow=uow, config=cfg, now=lambda: T0)
    request = RerouteRequested(
        lead_id=event.lead_id,
        occurred_at=T0,
        reason="SLA breached",
        requested_by="sla-monitor",
        assignment_id=first.assignment_id,
    )
    (second,) = await handlers.handle(request, uow=uow, config=cfg, now=lambda: T0)
    assert second.decision is not None and second.decision.rep_id == "rep-1"
    assert second.decision.excluded == ("rep-0",)
    assert second.decision.reasons[0].rule_id == "reroute.requested"
    rerouted = uow.outbox[-1]
    assert isinstance(rerouted, LeadAssigned) and rerouted.reassignment
    assert rerouted.previous_owner_id == "rep-0"
    stale = request.model_copy(update={"event_id": request.event_id.__class__(int=7)})
    (third,) = await handlers.handle(stale, uow=uow, config=cfg, now=lambda: T0)
    assert third.decision is None and "stale" in (third.note or "")
    unknown = RerouteRequested(lead_id="nobody", occurred_at=T0, reason="x", requested_by="ops")
    (fourth,) = await handlers.handle(unknown, uow=uow, config=cfg, now=lambda: T0)
    assert fourth.decision is None and len(uow.outbox) == 2


async def test_nobody_available_queues_the_lead() -> None:
    uow = FakeRouterUow()
    cfg = build(
        reps=[{"id": "r", "name": "R", "active": False}],
        teams=[{"id": "sdr", "name": "SDR", "members": ["r"], "fallback": {"queue": "sdr-queue"}}],
    )
    await handlers.handle(stage_changed(), uow=uow, config=cfg, now=lambda: T0)
    (assigned,) = uow.outbox
    assert isinstance(assigned, LeadAssigned) and assigned.queue == "sdr-queue"
    assert assigned.owner.id == "queue:sdr-queue"


async def test_erasure_scrubs_the_outbox_webhooks_and_ownership() -> None:
    uow, cfg = FakeRouterUow(), always_open()
    event = stage_changed()
    await handlers.handle(event, uow=uow, config=cfg, now=lambda: T0)
    erased = LeadErased(lead_id=event.lead_id, occurred_at=T0, erased_fields=("email",))
    await handlers.handle(erased, uow=uow, config=cfg, now=lambda: T0)
    (hook,) = uow.webhooks.values()
    lead_data = hook["payload"]["data"]["lead"]
    assert lead_data["email"] == ERASED and lead_data["company"] == "Northwind"
    assigned = uow.outbox[0]
    assert isinstance(assigned, LeadAssigned) and assigned.lead.email == ERASED
    assert uow.owners.current[event.lead_id].lead["email"] == ERASED


async def test_stages_not_routed_are_ignored() -> None:
    uow = FakeRouterUow()
    await handlers.handle(stage_changed(Stage.INQUIRY), uow=uow, config=build(), now=lambda: T0)
    assert uow.outbox == [] and uow.commits == 0


def test_a_reps_state_now_is_the_first_reason_they_cannot_take_a_lead() -> None:
    cfg = build(
        reps=[
            {"id": "paused", "name": "P", "paused": True},
            {
                "id": "away",
                "name": "Away",
                "out_of_office": [{"from": "2026-11-20", "to": "2026-11-27"}],
            },
            {"id": "nyc", "name": "NY", "timezone": "America/New_York"},
            {"id": "full", "name": "Full", "capacity": {"day": 2}},
            {"id": "free", "name": "Free", "capacity": {"day": 2, "week": 9}},
        ],
        teams=[{"id": "sdr", "name": "SDR", "members": ["paused", "away", "nyc", "full", "free"]}],
    )
    monday = date(2026, 11, 23)
    loads = {"full": {monday: 2}, "free": {monday: 1, date(2026, 11, 20): 5}}
    states = {r: domain.rep_state(cfg.reps[r], MONDAY_10, loads, hours=True) for r in cfg.reps}
    assert {r: s["state"] for r, s in states.items()} == {
        "paused": "paused",
        "away": "out_of_office",
        "nyc": "off_hours",
        "full": "capacity_day",
        "free": "available",
    }
    assert states["away"]["out_of_office"] == [{"from": "2026-11-20", "to": "2026-11-27"}]
    assert (states["free"]["today"], states["free"]["this_week"]) == (1, 1)  # Friday was last week
    # in a pool that ignores working hours, New York's night does not count
    assert domain.rep_state(cfg.reps["nyc"], MONDAY_10, loads, hours=False)["state"] == "available"


def test_a_webhook_secret_may_come_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_WEBHOOK_SECRET", SECRET)
    (tmp_path / "ops").write_text(SECRET + "\n")
    hooks = [
        {"id": "crm", "url": "http://crm.invalid/hook", "secret": {"env": "CRM_WEBHOOK_SECRET"}},
        {"id": "ops", "url": "http://ops.invalid/hook", "secret": {"file": str(tmp_path / "ops")}},
    ]
    cfg = build(webhooks=hooks)
    assert {e.secret for e in cfg.endpoints().values()} == {SECRET}
    # what is stored and compared is the reference, never the secret
    assert cfg.document()["webhooks"][0]["secret"] == {"env": "CRM_WEBHOOK_SECRET"}
    assert SECRET not in str(cfg.document())
    monkeypatch.delenv("CRM_WEBHOOK_SECRET")
    with pytest.raises(
        ConfigError, match=r"webhooks\[0\]\.secret: .*CRM_WEBHOOK_SECRET is not set"
    ):
        config.parse(yaml.safe_dump({**build().document(), "webhooks": hooks}), "routing.yaml")
