"""analytics' pure parts: what it keeps of each event, and the planner."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from analytics import domain
from analytics.domain import Measured, PlanError
from bench.analytics import histories
from leadrelay_shared.contracts import Stage
from tests.factories import T0, activity, feedback, form

EXAMPLE = {
    "inquiry_to_mql": 0.10,
    "mql_to_sal": 0.85,
    "sal_to_sql": 0.60,
    "sql_to_opportunity": 1.0,
    "opportunity_to_won": 0.30,
}


def plan(**overrides: object) -> domain.Plan:
    args: dict[str, object] = {
        "revenue_target": 1_000_000,
        "avg_deal_size": 10_000,
        "measured_deal_size": None,
        "marketing_share": 1.0,
        "window_days": 180,
        "rates": EXAMPLE,
        "measured": {},
        "run_rates": {},
    }
    return domain.plan(**(args | overrides))  # type: ignore[arg-type]


def test_the_issue_example_needs_6536_inquiries() -> None:
    p = plan(run_rates={Stage.INQUIRY: 5000, Stage.WON: 120})
    needed = {s.stage: s.needed for s in p.stages}
    assert needed == {
        Stage.WON: 100,
        Stage.OPPORTUNITY: 334,  # 333.3…
        Stage.SQL: 334,
        Stage.SAL: 556,  # 555.5…
        Stage.MQL: 654,  # 653.59…
        Stage.INQUIRY: 6536,  # 6535.9…: rounded up once, not from the rounded stage above
    }
    by = {s.stage: s for s in p.stages}
    assert (by[Stage.INQUIRY].run_rate, by[Stage.INQUIRY].gap) == (5000, 1536)
    assert by[Stage.WON].gap == 0
    assert all(s.rate_source == "given" for s in p.stages if s.stage is not Stage.WON)


def test_rates_left_out_are_measured_and_say_on_how_many_leads() -> None:
    rates = {k: v for k, v in EXAMPLE.items() if k != "mql_to_sal"}
    p = plan(rates=rates, measured={"mql_to_sal": Measured(0.5, 240)})
    mql = next(s for s in p.stages if s.stage is Stage.MQL)
    assert (mql.rate_to_next, mql.rate_source, mql.sample) == (0.5, "measured", 240)
    assert mql.needed == 1112  # 555.5… / 0.5
    assert any("mql_to_sal" in r and "240" in r for r in p.reasons)


def test_a_measured_deal_size_is_used_when_none_is_given() -> None:
    p = plan(avg_deal_size=None, measured_deal_size=Decimal("20000.00"))
    assert p.deal_size_source == "measured"
    assert next(s for s in p.stages if s.stage is Stage.WON).needed == 50


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"avg_deal_size": None}, "avg_deal_size"),
        ({"rates": {}}, "rates.inquiry_to_mql"),
        ({"rates": {}, "measured": {n: Measured(None, 0) for n in domain.RATE_NAMES}}, None),
        ({"rates": EXAMPLE | {"sal_to_sql": 0.0}}, "rates.sal_to_sql"),
    ],
)
def test_a_plan_that_cannot_be_made_names_what_to_give(
    overrides: dict[str, object], field: str | None
) -> None:
    with pytest.raises(PlanError) as caught:
        plan(**overrides)
    assert caught.value.field == (field or "rates.inquiry_to_mql")


def test_amounts_are_kept_in_minor_units_of_their_currency() -> None:
    assert domain.to_minor(10_000.5, "EUR") == 1_000_050
    assert domain.to_minor(0.1 + 0.2, "USD") == 30  # from the decimal text: 0.30000000000000004
    assert domain.to_minor(1234, "JPY") == 1234
    assert domain.to_minor(1.234, "KWD") == 1234
    assert domain.from_minor(1_000_050, "EUR") == Decimal("10000.50")


def test_facts_keep_no_personal_data() -> None:
    f = form("ada.lovelace@northwind.example")
    events = [f, activity(f.lead_id), feedback(f.lead_id, "rejected", reason="no_budget")]
    kept = json.dumps(domain.facts_of(events).tables(), default=str)
    for personal in ("ada", "lovelace", "northwind", "Ada"):
        assert personal not in kept


def test_a_batch_keeps_the_first_touch_and_the_latest_stage_whatever_their_order() -> None:
    people = histories.leads(30, T0, timedelta(days=3))
    events = list(histories.history(people))
    forward = domain.facts_of(events)
    backward = domain.facts_of(list(reversed(events)))
    for a, b in ((forward.firsts, backward.firsts), (forward.stages, backward.stages)):
        assert {k: {x: y for x, y in v.items() if x != "_key"} for k, v in a.items()} == {
            k: {x: y for x, y in v.items() if x != "_key"} for k, v in b.items()
        }
    won = [lead for lead, s in forward.stages.items() if s["stage"] == "won"]
    assert all(forward.firsts[lead]["origin"] == "marketing" for lead in won)


def test_moves_of_one_instant_order_along_the_waterfall_and_by_cycle() -> None:
    assert domain.stage_order("mql", 1) > domain.stage_order("inquiry", 0)
    assert domain.stage_order("sal", 1) > domain.stage_order("mql", 1)
    assert domain.stage_order("nurture", 1) > domain.stage_order("mql", 1)
    assert domain.stage_order("mql", 2) > domain.stage_order("nurture", 1)


def test_the_generated_history_has_its_closed_form_counts() -> None:
    people = histories.leads(2000, T0, timedelta(days=30))
    entered: dict[str, int] = {}
    for e in histories.history(people):
        if e.event_type == "io.leadrelay.stage.changed":
            stage = e.to_stage.value  # type: ignore[attr-defined]
            entered[stage] = entered.get(stage, 0) + 1
    want = histories.expected_entries(2000)
    assert {s: entered.get(s.value, 0) for s in want} == want
    assert want[Stage.MQL] == 200 and want[Stage.SAL] == 170
