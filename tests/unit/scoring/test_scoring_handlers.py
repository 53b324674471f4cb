"""scoring's handlers with in-memory fakes: batches, redelivery, refusals, timers, erasure."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from leadrelay_shared import jsonio
from leadrelay_shared.contracts import LeadErased, LeadScored, Stage, StageChanged
from leadrelay_shared.privacy import ERASED
from scoring import handlers
from scoring.config import default_model
from tests.factories import T0, engagement, feedback, form
from tests.unit.scoring.fakes import FakeScoringUow

MODEL = default_model()


def now() -> datetime:
    return T0


async def test_form_emits_score_and_stages_and_ignores_redelivery() -> None:
    uow = FakeScoringUow()
    event = form()
    await handlers.handle_batch([event], uow=uow, model=MODEL, now=now)
    await handlers.handle_batch([event], uow=uow, model=MODEL, now=now)  # redelivered
    assert [type(e) for e in uow.outbox] == [LeadScored, StageChanged, StageChanged]
    scored = uow.outbox[0]
    assert isinstance(scored, LeadScored) and scored.fit_grade == "B"
    assert scored.model_version == MODEL.version
    assert sum(c.points for c in scored.contributions) == scored.fit_score + scored.engagement_score
    changed = uow.outbox[-1]
    assert isinstance(changed, StageChanged) and changed.to_stage is Stage.MQL
    assert changed.lead.email == event.lead.email and changed.cycle == 1
    assert changed.actor == "marketing"


async def test_a_batch_applies_events_in_order_and_keeps_history() -> None:
    uow = FakeScoringUow()
    first = form()
    lead = first.lead_id
    batch = [
        first,
        feedback(lead, "accepted"),
        feedback(lead, "converted", opportunity_id="o1"),
        feedback(lead, "won"),
        first,
    ]  # a duplicate inside the batch counts once
    await handlers.handle_batch(batch, uow=uow, model=MODEL, now=now)
    assert uow.leads.rows[lead].stage is Stage.WON
    steps = [(r.from_stage, r.to_stage, r.actor, r.cycle) for r in uow.history.records]
    assert steps == [
        (None, Stage.INQUIRY, "marketing", 0),
        (Stage.INQUIRY, Stage.MQL, "marketing", 1),
        (Stage.MQL, Stage.SAL, "sales", 1),
        (Stage.SAL, Stage.SQL, "sales", 1),
        (Stage.SQL, Stage.OPPORTUNITY, "sales", 1),
        (Stage.OPPORTUNITY, Stage.WON, "sales", 1),
    ]
    assert uow.commits == 1


async def test_a_refused_move_is_on_the_timeline_and_emits_nothing() -> None:
    uow = FakeScoringUow()
    event = form()
    await handlers.handle_batch([event], uow=uow, model=MODEL, now=now)
    emitted = len(uow.outbox)
    await handlers.handle_batch(
        [feedback(event.lead_id, "accepted")], uow=uow, model=MODEL, now=now
    )
    await handlers.handle_batch([feedback(event.lead_id, "lost")], uow=uow, model=MODEL, now=now)
    kinds = [e.kind for e in uow.timeline.entries]
    assert "transition_refused" in kinds
    refused = next(e for e in uow.timeline.entries if e.kind == "transition_refused")
    assert refused.summary == "refused: a lead cannot move from sal to lost"
    assert refused.detail["reasons"][1]["rule_id"] == "feedback.lost"
    assert len(uow.outbox) == emitted + 1  # only accepted (mql → sal) was applied


async def test_timers_recycle_an_unaccepted_mql() -> None:
    uow = FakeScoringUow()
    event = form()
    await handlers.handle_batch([event], uow=uow, model=MODEL, now=now)
    assert await handlers.run_timers(uow=uow, model=MODEL, now=T0 + timedelta(days=13)) == 0
    assert await handlers.run_timers(uow=uow, model=MODEL, now=T0 + timedelta(days=14)) == 1
    last = uow.outbox[-1]
    assert isinstance(last, StageChanged) and last.to_stage is Stage.RECYCLED
    assert last.actor == "time"


async def test_erase_scrubs_profile_timeline_and_outbox_and_announces_it() -> None:
    uow = FakeScoringUow()
    event = form()
    await handlers.handle_batch([event], uow=uow, model=MODEL, now=now)
    await handlers.handle_batch(
        [engagement(event.lead_id, url="https://x.example/pricing?e=ada")],
        uow=uow,
        model=MODEL,
        now=now,
    )
    at = T0 + timedelta(days=1)
    assert await handlers.erase(event.lead_id, uow=uow, now=at, requested_by="ticket-9") == at
    assert (
        await handlers.erase(event.lead_id, uow=uow, now=at + timedelta(1), requested_by=None) == at
    )  # twice is harmless
    profile = uow.leads.rows[event.lead_id]
    assert profile.snapshot.email is None and profile.erased_at == at
    assert profile.snapshot.company == "Northwind"
    dump = repr([e.detail for e in uow.timeline.entries]) + repr(
        [e.model_dump() for e in uow.outbox]
    )
    assert event.lead.email and event.lead.email not in dump and "pricing?e=ada" not in dump
    assert ERASED in dump
    erased = [e for e in uow.outbox if isinstance(e, LeadErased)]
    assert len(erased) == 1 and erased[0].requested_by == "ticket-9"


async def test_a_scored_entry_is_written_as_its_detail() -> None:
    """The timeline's scored entry carries its detail already written as JSON (the lines are
    written once for it and lead.scored): that JSON is the detail."""
    uow = FakeScoringUow()
    await handlers.handle_batch([form()], uow=uow, model=MODEL, now=now)
    scored = [e for e in uow.timeline.entries if e.kind == "scored"]
    assert len(scored) == 1 and scored[0].detail["fit"] and scored[0].detail_json is not None
    assert jsonio.loads(scored[0].detail_json) == jsonio.loads(jsonio.dumps(scored[0].detail))
    event = uow.outbox[0]
    assert isinstance(event, LeadScored) and [c.rule_id for c in event.contributions] == [
        x["rule_id"] for x in scored[0].detail["fit"] + scored[0].detail["engagement"]
    ]


@pytest.mark.parametrize(
    "left, right, joined",
    [("[]", "[]", "[]"), ("[1]", "[]", "[1]"), ("[]", "[2]", "[2]"), ("[1,2]", "[3]", "[1,2,3]")],
)
def test_json_arrays_join(left: str, right: str, joined: str) -> None:
    assert handlers._json_concat(left, right) == joined


async def test_lead_scored_is_the_json_of_the_contract() -> None:
    """The lead.scored scoring writes straight to JSON is, byte for byte, what the LeadScored
    model writes for the same values: a field added to the contract and not here fails this."""
    uow = FakeScoringUow()
    await handlers.handle_batch([form()], uow=uow, model=MODEL, now=now)
    scored = uow.outbox[0]
    assert isinstance(scored, LeadScored) and scored.contributions
    lines = [c.model_dump(mode="json") for c in scored.contributions]
    for grade, event_id in ((scored.fit_grade, scored.event_id), (None, uuid.uuid4())):
        fake = SimpleNamespace(
            lead_id=scored.lead_id,
            fit_score=scored.fit_score,
            engagement_score=scored.engagement_score,
            fit_grade=grade,
        )
        written = handlers.lead_scored(
            fake,  # type: ignore[arg-type]
            jsonio.dumps_str(lines),
            "m-1",
            scored.occurred_at,
            scored.cause_event_id,
            event_id,
        )
        model = scored.model_copy(
            update={"fit_grade": grade, "event_id": event_id, "model_version": "m-1"}
        )
        assert written.json == model.model_dump_json()
        assert written.parse() == model
        assert (written.event_type, written.topic) == (LeadScored.event_type, LeadScored.topic)
