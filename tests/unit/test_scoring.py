from __future__ import annotations

from datetime import datetime, timezone

import pytest

from leadrelay_shared.contracts import LeadScored, Stage, StageChanged
from scoring import domain, handlers
from scoring.domain import ALLOWED, ScoringModel, TransitionRejected
from tests.factories import T0, form, unique_email
from tests.unit.fakes import FakeScoringUow

MODEL = ScoringModel()


def now() -> datetime:
    return T0


def test_fit_lead_goes_inquiry_then_mql_with_reasons() -> None:
    decision = domain.on_form(None, form(title="VP Engineering"), MODEL, T0)
    assert [t.to_stage for t in decision.transitions] == [Stage.INQUIRY, Stage.MQL]
    mql = decision.transitions[1]
    assert mql.reasons[0].rule_id == "mql.fit_threshold"
    assert "business email" in mql.reasons[0].message
    assert decision.profile.stage == Stage.MQL and decision.profile.fit_score == 65


@pytest.mark.parametrize("email, title, company", [
    (unique_email(domain="gmail.com"), "CTO", None),  # free mail, no company: fit 35
    (unique_email(), None, "Northwind"),  # no title: fit 30
])
def test_unfit_lead_stays_inquiry(email: str, title: str | None, company: str | None) -> None:
    decision = domain.on_form(None, form(email, title=title, company=company), MODEL, T0)
    assert [t.to_stage for t in decision.transitions] == [Stage.INQUIRY]


def test_second_form_merges_identity_and_caps_engagement() -> None:
    email = unique_email()
    first = domain.on_form(None, form(email, title=None), MODEL, T0)
    profile = first.profile
    for _ in range(5):
        profile = domain.on_form(profile, form(email, title=None, company=None), MODEL, T0).profile
    assert profile.snapshot.company == "Northwind"  # not forgotten
    assert profile.engagement_score == MODEL.form_fill_cap


def test_forbidden_transition_is_rejected_with_a_reason() -> None:
    with pytest.raises(TransitionRejected) as err:
        domain.transition(Stage.INQUIRY, Stage.WON, ())
    assert err.value.reason.rule_id == "stage.forbidden"


@pytest.mark.parametrize("current", list(ALLOWED))
def test_every_transition_in_the_table(current: Stage | None) -> None:
    for target in Stage:
        if target in ALLOWED[current]:
            assert domain.transition(current, target, ()).to_stage == target
        else:
            with pytest.raises(TransitionRejected):
                domain.transition(current, target, ())


@pytest.mark.parametrize("title, senior", [("VP Sales", True), ("Head of Data", True),
                                           ("Vice President, Ops", True), ("Developer", False),
                                           ("Supervisor", False)])
def test_seniority(title: str, senior: bool) -> None:
    assert domain.is_senior(title, MODEL.senior_keywords) is senior


async def test_handler_emits_score_and_stages_and_ignores_redelivery() -> None:
    uow = FakeScoringUow()
    event = form()
    await handlers.handle(event, uow=uow, model=MODEL, now=now)
    await handlers.handle(event, uow=uow, model=MODEL, now=now)  # redelivered
    kinds = [type(e) for e in uow.outbox]
    assert kinds == [LeadScored, StageChanged, StageChanged]
    changed = [e for e in uow.outbox if isinstance(e, StageChanged)]
    assert changed[-1].to_stage == Stage.MQL and changed[-1].lead.email == event.lead.email
    assert uow.leads.rows[event.lead_id].form_fills == 1
    assert [e["kind"] for e in uow.timeline.entries] == [
        "form_submitted", "scored", "stage_changed", "stage_changed"]


def test_scores_are_deterministic() -> None:
    event = form()
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert domain.on_form(None, event, MODEL, at) == domain.on_form(None, event, MODEL, at)
