"""What-if re-scoring: a window's leads replayed under the active model and a candidate, each
event at its moment, with exactly the differences the candidate makes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from leadrelay_shared.contracts import Stage
from scoring.config import default_text, parse
from scoring.simulation import Input, LeadInputs, Scored, answer, first_touch, replay, simulate
from tests.factories import T0, engagement, feedback, form

ACTIVE = parse(default_text(), "default")
# grade B from 40 points instead of 50: a lead of 40 becomes B, and its form fill a hand raise
CANDIDATE = parse(
    default_text()
    .replace('version: "default-2026.11"', 'version: "candidate"')
    .replace("grades: {A: 70, B: 50, C: 30, D: 15}", "grades: {A: 70, B: 40, C: 30, D: 15}"),
    "candidate",
)
WINDOW = (T0, T0 + timedelta(days=1))


def inputs(*events: Input) -> LeadInputs:
    """A lead's events, and where the active model really left it (as scoring stored it)."""
    nobody = Scored(None, 0, "F", 0, False, ())
    lead = LeadInputs(events[0].lead_id, *first_touch(events), events, nobody)
    return replace(lead, before=replay(lead, ACTIVE, *WINDOW))


# 65 points (grade B under both): qualified before the window; accepted by sales in it
BUYER = form("vp@northwind.example", at=T0 - timedelta(days=2))
# 40 points: grade C today, grade B under the candidate
ANALYST = form("analyst@contoso.example", title="Analyst", at=T0 + timedelta(hours=1))
ANALYST = ANALYST.model_copy(update={"utm": {"utm_source": "ads", "utm_campaign": "spring"}})
# 25 points (free mail): grade D under both
STUDENT = form("someone@gmail.com", at=T0 + timedelta(hours=2))
LEADS = [
    inputs(BUYER, feedback(BUYER.lead_id, "accepted", at=T0 + timedelta(hours=3))),
    inputs(ANALYST, engagement(ANALYST.lead_id, url="/pricing", at=T0 + timedelta(hours=4))),
    inputs(STUDENT),
]


def test_each_lead_ends_the_window_where_its_events_take_it() -> None:
    buyer, analyst, student = (replay(lead, ACTIVE, *WINDOW) for lead in LEADS)
    assert (buyer.stage, buyer.fit_grade, buyer.became_mql) == (Stage.SAL, "B", False)
    assert buyer.reasons[0].rule_id == "feedback.accepted"
    assert (analyst.stage, analyst.fit_score, analyst.fit_grade) == (Stage.INQUIRY, 40, "C")
    # the form fill's 30, the pricing page's 15 and any page's 2
    assert analyst.engagement_score == 47
    assert (student.stage, student.fit_grade) == (Stage.INQUIRY, "D")


def test_a_candidate_changes_exactly_what_it_changes() -> None:
    sim = simulate(LEADS, CANDIDATE, window=WINDOW, active_version=ACTIVE.version)
    assert [c.lead_id for c in sim.changed] == [ANALYST.lead_id]
    analyst = sim.changed[0]
    assert (analyst.before.stage, analyst.after.stage) == (Stage.INQUIRY, Stage.MQL)
    assert (analyst.before.became_mql, analyst.after.became_mql) == (False, True)
    assert analyst.after.reasons[0].rule_id == "fast.hand_raise_form"
    out = answer(sim)
    assert (out["mql_before"], out["mql_after"]) == (0, 1)
    assert {(g["source"], g["campaign"]): g["mql_change"] for g in out["by_source"]} == {
        ("(none)", "(none)"): 0,
        ("ads", "spring"): 1,
    }
    assert {g["grade"]: (g["before"], g["after"]) for g in out["grades"]} == {
        "A": (0, 0),
        "B": (1, 2),
        "C": (1, 0),
        "D": (1, 1),
        "F": (0, 0),
    }
    row = out["leads"][0]
    assert row["why_after"].startswith("fast lane: form fill from a grade B lead")
    assert "analyst@" not in str(out)  # ids and scores, no personal data
    assert len(answer(sim, every_lead=True)["leads"]) == 3
    assert "became MQL: 0 under default-2026.11, 1 under candidate (+1)" in out["summary"]


def test_the_active_model_changes_nothing() -> None:
    sim = simulate(LEADS, ACTIVE, window=WINDOW, active_version=ACTIVE.version)
    assert sim.changed == ()
