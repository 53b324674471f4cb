"""Seeded lead histories with known rates and delays, and the figures they must give.

Every lead fills a form (its first touch, from one of a few sources and campaigns) and enters
inquiry. At each forward step the leads that go on are chosen by a fixed pattern, not by chance:
of the ``n`` leads at a stage, the ``j``-th goes on when ``j mod b < a`` for the step's rate
``a/b``, so ``n // b * a + min(n mod b, a)`` go on, exactly. Each step takes a fixed delay. MQLs
are assigned to a rep, who calls them (all but every seventh, whose SLA breaches); MQLs that
sales does not accept are rejected with a reason and recycled; opportunities carry their amount
(pipeline) and won deals theirs. So the figures of such a history are known in closed form
(``expected_entries``, ``DELAYS``).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from leadrelay_shared.contracts import (
    ActivityLogged,
    Event,
    FeedbackReceived,
    FormSubmitted,
    LeadAssigned,
    LeadSnapshot,
    Owner,
    Reason,
    SlaBreached,
    Stage,
    StageChanged,
)

FUNNEL = (Stage.INQUIRY, Stage.MQL, Stage.SAL, Stage.SQL, Stage.OPPORTUNITY, Stage.WON)
RATES: dict[Stage, tuple[int, int]] = {  # the step from this stage to the next: a/b
    Stage.INQUIRY: (1, 10),
    Stage.MQL: (17, 20),
    Stage.SAL: (3, 5),
    Stage.SQL: (1, 1),
    Stage.OPPORTUNITY: (3, 10),
}
DELAYS: dict[Stage, timedelta] = {  # how long the step from this stage to the next takes
    Stage.INQUIRY: timedelta(days=2),
    Stage.MQL: timedelta(hours=20),
    Stage.SAL: timedelta(days=5),
    Stage.SQL: timedelta(days=3),
    Stage.OPPORTUNITY: timedelta(days=30),
}
SOURCES = ("google", "linkedin", "newsletter")
CAMPAIGNS = ("q4-demo", "webinar-ai", None)
REPS = (("rep-ana", "team-emea"), ("rep-ben", "team-emea"), ("rep-cy", "team-na"))
DEAL_MINOR = 1_000_000  # 10,000.00 EUR
REJECTIONS = ("not_a_fit", "no_budget", "bad_timing")
ASSIGN_AFTER = timedelta(minutes=1)
FIRST_CALL_AFTER = timedelta(minutes=20)
BREACH_AFTER = timedelta(hours=1)
UNWORKED_EVERY = 7  # the 1st, 8th, 15th … MQL is never called, and its SLA breaches


def goes_on(j: int, stage: Stage) -> bool:
    a, b = RATES[stage]
    return j % b < a


def expected_entries(leads: int) -> dict[Stage, int]:
    """How many leads enter each forward stage, in closed form."""
    out, n = {}, leads
    for stage in FUNNEL:
        out[stage] = n
        if stage in RATES:
            a, b = RATES[stage]
            n = n // b * a + min(n % b, a)
    return out


@dataclass(frozen=True)
class Lead:
    lead_id: str
    index: int
    start: datetime
    source: str
    campaign: str | None


def leads(
    count: int, start: datetime, spread: timedelta, seed: int = 7, sources: Sequence[str] = SOURCES
) -> list[Lead]:
    """``count`` leads whose first touches are spread evenly over ``spread`` from ``start``,
    from ``sources`` in turn."""
    rnd = random.Random(seed)
    step = spread / count
    return [
        Lead(
            lead_id=f"hist-{seed}-{i:07d}",
            index=i,
            start=start + step * i,
            source=sources[i % len(sources)],
            campaign=CAMPAIGNS[rnd.randrange(len(CAMPAIGNS))],
        )
        for i in range(count)
    ]


def _uuid(rnd: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rnd.getrandbits(128), version=4)


def history(people: list[Lead], seed: int = 7) -> Iterator[Event]:
    """Every event of the leads' histories, lead by lead (event ids seeded, so two calls give
    the same events)."""
    rnd = random.Random(seed)
    ordinal = dict.fromkeys(FUNNEL, 0)  # how many leads have reached each stage so far
    for lead in people:
        at = lead.start
        yield FormSubmitted(
            event_id=_uuid(rnd),
            lead_id=lead.lead_id,
            occurred_at=at,
            received_at=at,
            lead=LeadSnapshot(company=f"Co {lead.index % 97}"),
            utm={"utm_source": lead.source}
            | ({"utm_campaign": lead.campaign} if lead.campaign else {}),
        )
        stage: Stage | None = None
        cycle = 0
        owner = REPS[lead.index % len(REPS)]
        for nxt in FUNNEL:
            if stage is not None:
                j = ordinal[stage] - 1
                if not goes_on(j, stage):
                    if stage is Stage.MQL:  # sales rejects it, and it is recycled
                        at += DELAYS[stage]
                        yield from _rejected(rnd, lead, at, cycle, owner[0])
                    break
                at += DELAYS[stage]
            cycle += nxt is Stage.MQL
            yield _moved(rnd, lead, stage, nxt, at, cycle)
            ordinal[nxt] += 1
            if nxt is Stage.MQL:
                yield from _handed_off(rnd, lead, at + ASSIGN_AFTER, owner, ordinal[Stage.MQL])
            if nxt in (Stage.OPPORTUNITY, Stage.WON):
                yield FeedbackReceived(
                    event_id=_uuid(rnd),
                    lead_id=lead.lead_id,
                    occurred_at=at,
                    received_at=at,
                    feedback="won" if nxt is Stage.WON else "converted",
                    actor_id=owner[0],
                    opportunity_id=f"opp-{lead.index}",
                    amount=DEAL_MINOR / 100,
                    currency="EUR",
                )
            stage = nxt


def _moved(
    rnd: random.Random, lead: Lead, old: Stage | None, new: Stage, at: datetime, cycle: int
) -> StageChanged:
    return StageChanged(
        event_id=_uuid(rnd),
        lead_id=lead.lead_id,
        occurred_at=at,
        from_stage=old,
        to_stage=new,
        reasons=(Reason(rule_id="history", message="generated"),),
        model_version="history",
        cause_event_id=_uuid(rnd),
        lead=LeadSnapshot(),
        cycle=cycle,
        actor="marketing" if new in (Stage.INQUIRY, Stage.MQL) else "sales",
    )


def _handed_off(
    rnd: random.Random, lead: Lead, at: datetime, owner: tuple[str, str], nth: int
) -> Iterator[Event]:
    """The MQL's assignment, then its owner's first call, or (every ``UNWORKED_EVERY``-th
    MQL, from the first) no call and a breached SLA."""
    assigned = _assigned(rnd, lead, at, owner)
    yield assigned
    if nth % UNWORKED_EVERY == 1:
        yield SlaBreached(
            event_id=_uuid(rnd),
            lead_id=lead.lead_id,
            occurred_at=at + BREACH_AFTER,
            clock_id=_uuid(rnd),
            assignment_id=assigned.assignment_id,
            owner_id=owner[0],
            team_id=owner[1],
            policy_id="first-touch",
            started_at=at,
            due_at=at + BREACH_AFTER,
            reasons=(),
        )
    else:
        yield ActivityLogged(
            event_id=_uuid(rnd),
            lead_id=lead.lead_id,
            occurred_at=at + FIRST_CALL_AFTER,
            received_at=at + FIRST_CALL_AFTER,
            activity_type="call",
            actor_id=owner[0],
        )


def _assigned(rnd: random.Random, lead: Lead, at: datetime, owner: tuple[str, str]) -> LeadAssigned:
    return LeadAssigned(
        event_id=_uuid(rnd),
        lead_id=lead.lead_id,
        occurred_at=at,
        assignment_id=_uuid(rnd),
        stage=Stage.MQL,
        owner=Owner(id=owner[0], name=owner[0]),
        team_id=owner[1],
        strategy="round_robin",
        reasons=(),
        config_version="history",
        lead=LeadSnapshot(),
        cause_event_id=_uuid(rnd),
        territory="emea" if owner[1] == "team-emea" else "na",
        segment="mid",
    )


def _rejected(
    rnd: random.Random, lead: Lead, at: datetime, cycle: int, actor: str
) -> Iterator[Event]:
    yield FeedbackReceived(
        event_id=_uuid(rnd),
        lead_id=lead.lead_id,
        occurred_at=at,
        received_at=at,
        feedback="rejected",
        reason_code=REJECTIONS[lead.index % len(REJECTIONS)],
        actor_id=actor,
    )
    yield _moved(rnd, lead, Stage.MQL, Stage.RECYCLED, at, cycle)
