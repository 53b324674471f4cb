"""analytics' pure parts: what it keeps of each event, and the planner."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics import domain
from analytics.domain import Measured, PlanError
from analytics.schemas import PLAN_EXAMPLE
from bench.analytics import histories
from leadrelay_shared.contracts import Stage
from tests.factories import T0, activity, feedback, form, mql

EXAMPLE: dict[str, float] = PLAN_EXAMPLE["rates"]


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
    # not "ada" alone: it is hex, and the facts are full of ids
    for personal in ("ada.lovelace", "lovelace", "northwind", "Ada"):
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


def test_a_batch_gives_each_forward_entry_its_next_forward_entry_in_any_order() -> None:
    first = mql("next@northwind.example")
    moves = [(Stage.INQUIRY, 0), (Stage.MQL, 1), (Stage.NURTURE, 2), (Stage.SAL, 3)]
    events = [
        first.model_copy(
            update={
                "event_id": uuid.uuid4(),
                "to_stage": stage,
                "occurred_at": T0 + timedelta(hours=h),
            }
        )
        for stage, h in moves
    ]
    for batch in (events, events[::-1]):
        rows = {r["to_stage"]: r["next_at"] for r in domain.facts_of(batch).stage_changes}
        # a side stage has no next entry; the last forward entry has none yet
        assert rows == {
            "inquiry": T0 + timedelta(hours=1),
            "mql": T0 + timedelta(hours=3),
            "nurture": None,
            "sal": None,
        }


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


def touches(*kinds: str, days_before: tuple[int, ...] | None = None) -> list[domain.Touch]:
    ago = days_before or tuple(range(len(kinds) - 1, -1, -1))
    return [
        domain.Touch(at=T0 - timedelta(days=d), source=f"s{i}", campaign=f"c{i}", kind=k)
        for i, (k, d) in enumerate(zip(kinds, ago, strict=True))
    ]


DEAL = domain.Deal(lead_id="l", at=T0, kind="revenue", amount_minor=100_000, currency="EUR")


def test_u_and_w_shapes_credit_first_touch_creation_and_opportunity() -> None:
    four = touches("page_view", "form", "email_click", "webinar_attended")
    F = Fraction
    assert domain.attribution_weights("u_shaped", four, DEAL) == [
        F(2, 5),
        F(2, 5),
        F(1, 10),
        F(1, 10),
    ]
    opened = replace(DEAL, opened_at=T0 - timedelta(days=1))  # after the email click
    assert domain.attribution_weights("w_shaped", four, opened) == [
        F(3, 10),
        F(3, 10),
        F(3, 10),
        F(1, 10),
    ]
    # the first touch is the form that created the lead: it takes both named shares
    one_form = touches("form", "page_view")
    assert domain.attribution_weights("u_shaped", one_form, DEAL) == [F(4, 5), F(1, 5)]
    assert domain.attribution_weights("u_shaped", touches("form"), DEAL) == [F(1)]


def test_last_touch_is_the_last_before_the_mql_and_time_decay_halves_weekly() -> None:
    three = touches("form", "email_click", "page_view", days_before=(20, 10, 1))
    mql = replace(DEAL, mql_at=T0 - timedelta(days=5))
    assert domain.attribution_weights("last_touch", three, mql) == [0, 1, 0]
    decay = domain.attribution_weights(
        "time_decay", touches("form", "page_view", days_before=(7, 0)), DEAL
    )
    assert decay[0] * 2 == decay[1]


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.fractions(min_value=0, max_value=100), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_a_split_sums_exactly_and_each_part_is_within_one_unit(
    amount: int, weights: list[Fraction]
) -> None:
    parts = domain.split(amount, weights)
    assert sum(parts) == amount
    for part, w in zip(parts, weights, strict=True):
        assert abs(part - amount * w / sum(weights)) < 1


@given(
    amount=st.integers(min_value=0, max_value=10**12),
    weights=st.lists(st.fractions(min_value=0, max_value=100), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_a_split_on_integers_gives_the_parts_the_fractions_give(
    amount: int, weights: list[Fraction]
) -> None:
    exact = [amount * w / sum(weights) for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: amount - sum(parts)]:
        parts[i] += 1
    assert domain.split(amount, weights) == parts


@given(
    amounts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=5),
    kinds=st.lists(
        st.sampled_from(["form", "page_view", "email_click", "webinar_attended"]),
        min_size=0,
        max_size=8,
    ),
    model=st.sampled_from(domain.ATTRIBUTION_MODELS),
)
def test_every_model_credits_every_deal_whole(
    amounts: list[int], kinds: list[str], model: str
) -> None:
    lead_touches = {"l": touches(*kinds)} if kinds else {}
    deals = [
        replace(DEAL, amount_minor=a, kind=k, mql_at=T0 - timedelta(days=1))
        for a, k in zip(amounts, ["revenue", "pipeline"] * 3, strict=False)
    ]
    credited = domain.attribute(model, deals, lead_touches, "campaign")
    for kind in ("revenue", "pipeline"):
        assert sum(v for (c, k, _), v in credited.items() if k == kind) == sum(
            d.amount_minor for d in deals if d.kind == kind
        )
    if not kinds:
        assert {key for _, _, key in credited} == {domain.UNATTRIBUTED}
