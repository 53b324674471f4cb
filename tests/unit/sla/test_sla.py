from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from leadrelay_shared.contracts import (
    LeadAssigned,
    RerouteRequested,
    SlaBreached,
    Stage,
    StageChanged,
)
from leadrelay_shared.delivery import body_for
from sla_monitor import domain, handlers
from sla_monitor.adapters.repository import clock_of, row_of
from sla_monitor.calendar import Calendar, Exception_, add_working, working_between
from sla_monitor.config import parse, parse_duration
from sla_monitor.errors import PolicyError
from tests.factories import T0, activity, assigned, feedback, form
from tests.unit.sla.fakes import FakeSlaUow

UTC = UTC
PARIS, NY = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York")
OFFICE = Calendar(id="office", zone=PARIS, hours=(9 * 60, 17 * 60), country="FR")

CONFIG_TEXT = """version: t1
calendars:
  - {id: always, always: true}
  - {id: office, timezone: Europe/Paris, start: "09:00", end: "17:00", holidays: {country: FR}}
policies:
  - id: hot
    when: {stages: [mql], fit_grades: [A], min_engagement: 50}
    calendar: always
    first_touch: 15m
    follow_ups: [1h]
    warning_at: 0.8
    escalate_after: 10m
    reroute_after: 20m
  - id: standard
    when: {stages: [mql]}
    calendar: office
    first_touch: 4h
    warning_at: null
  - id: sal
    when: {stages: [sal]}
    calendar: always
    first_touch: 2h
    warning_at: null
channels:
  - {id: ops, type: webhook, url: "http://ops.invalid/hook", secret: "whsec_dGVzdA=="}
  - {id: slack, type: slack, url: "http://slack.invalid/hook", levels: [breach, resolved]}
  - {id: pd, type: pagerduty, url: "http://pd.invalid/enqueue", routing_key: "rk-1",
     levels: [breach, escalation, resolved]}
"""
CONFIG = parse(CONFIG_TEXT)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- deadline arithmetic -------------------------------------------------------------------


def test_friday_evening_is_due_monday_morning_and_the_text_says_so() -> None:
    friday = datetime(2026, 11, 27, 16, 45, tzinfo=PARIS)  # 15 minutes of Friday left
    due = add_working(OFFICE, PARIS, friday, timedelta(hours=1))
    assert due == datetime(2026, 11, 30, 9, 45, tzinfo=PARIS)
    h = domain.Handoff(
        "l",
        uuid.uuid4(),
        Stage.MQL,
        domain.Person("r", "Rita"),
        "t",
        friday.astimezone(UTC),
        owner_zone="Europe/Paris",
    )
    clock = domain.start_clock(h, CONFIG.policy("standard"), CONFIG.version)  # type: ignore[arg-type]
    assert clock.due_at == datetime(2026, 11, 30, 12, 45, tzinfo=PARIS)
    assert "due Mon 2026-11-30 12:45 CET" in clock.due_text
    assert "Sat 11-28 (weekend), Sun 11-29 (weekend)" in clock.due_text


def test_public_holidays_and_exceptions_do_not_count() -> None:
    us = Calendar(id="us", zone=NY, country="US")
    wednesday = datetime(2026, 11, 25, 16, 0, tzinfo=NY)  # Thanksgiving is Thursday the 26th
    assert add_working(us, NY, wednesday, timedelta(hours=2)) == datetime(
        2026, 11, 27, 10, 0, tzinfo=NY
    )
    closed = Calendar(
        id="c",
        zone=PARIS,
        exceptions={
            date(2026, 12, 1): Exception_(date(2026, 12, 1), None, "offsite"),
            date(2026, 12, 5): Exception_(date(2026, 12, 5), (10 * 60, 12 * 60), "Saturday event"),
        },
    )
    monday = datetime(2026, 11, 30, 16, 0, tzinfo=PARIS)
    assert add_working(closed, PARIS, monday, timedelta(hours=2)) == datetime(
        2026, 12, 2, 10, 0, tzinfo=PARIS
    )  # Tuesday closed by exception
    friday = datetime(2026, 12, 4, 16, 0, tzinfo=PARIS)
    assert add_working(closed, PARIS, friday, timedelta(hours=2)) == datetime(
        2026, 12, 5, 11, 0, tzinfo=PARIS
    )  # the open Saturday counts
    # 11 November is a French public holiday (Armistice).
    assert OFFICE.hours_on(date(2026, 11, 11)) is None
    assert "Armistice" in OFFICE.why_closed(date(2026, 11, 11))


def test_dst_moves_the_working_day_with_the_wall_clock() -> None:
    friday = datetime(2026, 3, 27, 16, 30, tzinfo=PARIS)  # CET, UTC+1
    due = add_working(OFFICE, PARIS, friday, timedelta(hours=1))
    assert due == datetime(2026, 3, 30, 9, 30, tzinfo=PARIS)  # CEST after the weekend
    assert due.astimezone(UTC) == utc(2026, 3, 30, 7, 30)
    always = Calendar(id="a", zone=PARIS, always=True)
    night = datetime(2026, 3, 29, 1, 30, tzinfo=PARIS)
    assert add_working(always, PARIS, night, timedelta(hours=1)).astimezone(
        UTC
    ) == night.astimezone(UTC) + timedelta(hours=1)  # an hour is 3,600 seconds across the gap
    assert working_between(OFFICE, PARIS, friday, due) == timedelta(hours=1)


def test_the_assignees_time_zone_decides() -> None:
    policy = CONFIG.policy("standard")
    assert policy is not None
    at = utc(2026, 11, 23, 15, 0)  # 16:00 in Paris, 10:00 in New York
    h = domain.Handoff("l", uuid.uuid4(), Stage.MQL, domain.Person("r", "R"), "t", at)
    in_paris = domain.start_clock(h, policy, "v")
    in_ny = domain.start_clock(
        domain.Handoff(**{**h.__dict__, "owner_zone": "America/New_York"}), policy, "v"
    )
    assert in_paris.due_at == datetime(2026, 11, 24, 12, 0, tzinfo=PARIS)
    assert in_ny.due_at == datetime(2026, 11, 23, 14, 0, tzinfo=NY)


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("soon")


# --- policies ------------------------------------------------------------------------------


def test_policy_file_errors_name_the_line_and_field() -> None:
    bad = CONFIG_TEXT.replace("first_touch: 4h", "first_touch: soon").replace(
        "calendar: always\n    first_touch: 2h", "calendar: nowhere\n    first_touch: 2h"
    )
    with pytest.raises(PolicyError) as err:
        parse(bad)
    text = "; ".join(err.value.problems)
    assert "line 17: policies[1].first_touch" in text and "not a duration" in text
    bad = CONFIG_TEXT.replace(
        "calendar: always\n    first_touch: 2h", "calendar: nowhere\n    first_touch: 2h"
    )
    with pytest.raises(PolicyError, match="policies\\[sal\\].calendar: unknown calendar"):
        parse(bad)
    with pytest.raises(PolicyError, match="routing_key"):
        parse(CONFIG_TEXT.replace('routing_key: "rk-1",', ""))


def test_first_matching_policy_applies_with_reasons() -> None:
    base = domain.Handoff("l", uuid.uuid4(), Stage.MQL, domain.Person("r", "R"), "t", T0)
    hot, reasons = domain.select(
        CONFIG, domain.Handoff(**{**base.__dict__, "fit_grade": "A", "engagement_score": 70})
    )
    assert hot is not None and hot.id == "hot" and "hot applies" in reasons[-1].message
    std, reasons = domain.select(
        CONFIG, domain.Handoff(**{**base.__dict__, "fit_grade": "A", "engagement_score": 20})
    )
    assert std is not None and std.id == "standard"
    assert reasons[0].message == "policy hot skipped: engagement 20 below 50"
    none, reasons = domain.select(CONFIG, domain.Handoff(**{**base.__dict__, "stage": Stage.SQL}))
    assert none is None and reasons[-1].rule_id == "sla.policy.none"


# --- what counts as worked -----------------------------------------------------------------


def _clock(stage: Stage = Stage.MQL, owner: str = "rep-ana", phase: int = 0) -> domain.Clock:
    h = domain.Handoff(
        "l",
        uuid.uuid4(),
        stage,
        domain.Person(owner, "Ana", "ana@x.example"),
        "t",
        T0,
        fit_grade="A",
        engagement_score=80,
    )
    policy = CONFIG.policy("sal" if stage == Stage.SAL else "hot")
    assert policy is not None
    return domain.start_clock(h, policy, "v", phase=phase)


def _touch(
    kind: str, type_: str, actor: str | None = "rep-ana", at: datetime = T0 + timedelta(minutes=5)
) -> domain.Touch:
    return domain.Touch(uuid.uuid4(), "l", kind, type_, actor, at)


def test_what_counts_as_worked() -> None:
    c = _clock()
    assert domain.works(c, _touch("activity", "call")) is not None
    assert domain.works(c, _touch("activity", "email", actor="ANA@x.example")) is not None
    assert domain.works(c, _touch("activity", "call", actor="rep-ben")) is None
    assert domain.works(c, _touch("activity", "call", actor=None)) is None
    assert domain.works(c, _touch("activity", "call", at=T0 - timedelta(seconds=1))) is None
    assert domain.works(c, _touch("feedback", "accepted", actor=None)) is not None
    assert domain.works(c, _touch("feedback", "rejected", actor="crm")) is not None
    sal = _clock(Stage.SAL)
    assert domain.works(sal, _touch("feedback", "accepted")) is None
    assert domain.works(sal, _touch("activity", "meeting")) is not None
    queued = _clock(owner="queue:sdr-queue")
    assert domain.works(queued, _touch("activity", "call", actor="rep-zoe")) is not None
    follow = _clock(phase=1)
    assert domain.works(follow, _touch("feedback", "converted")) is None


def test_levels_fire_in_order_each_once() -> None:
    c = _clock()
    assert [c.warn_at, c.due_at, c.escalate_at, c.reroute_at] == [
        T0 + timedelta(minutes=12),
        T0 + timedelta(minutes=15),
        T0 + timedelta(minutes=25),
        T0 + timedelta(minutes=35),
    ]
    fired = []
    while c.next_level is not None:
        alert, c = domain.fire(c, c.next_at)  # type: ignore[arg-type]
        fired.append(alert.level)
    assert fired == ["warning", "breach", "escalation", "reroute"]


# --- handlers ------------------------------------------------------------------------------


async def _handle(uow: FakeSlaUow, event: object) -> None:
    await handlers.handle_batch([event], uow=uow, config=lambda: CONFIG, now=lambda: T0)  # type: ignore[list-item]


async def _fire(uow: FakeSlaUow, at: datetime) -> list[str]:
    return [a.level for a in await handlers.fire_due(uow=uow, config=CONFIG, now=at)]


async def test_unworked_lead_walks_every_level_once_then_requests_a_reroute() -> None:
    uow = FakeSlaUow()
    event = assigned("lead-1")
    await _handle(uow, event)
    await _handle(uow, event)  # a redelivery starts nothing more
    assert len(uow.clocks.rows) == 1
    assert await _fire(uow, T0 + timedelta(minutes=11)) == []
    assert await _fire(uow, T0 + timedelta(minutes=12)) == ["warning"]
    assert await _fire(uow, T0 + timedelta(minutes=12)) == []
    assert await _fire(uow, T0 + timedelta(hours=2)) == ["breach"]  # one level per tick
    assert await _fire(uow, T0 + timedelta(hours=2)) == ["escalation"]
    assert await _fire(uow, T0 + timedelta(hours=2)) == ["reroute"]
    assert await _fire(uow, T0 + timedelta(days=2)) == []
    assert [type(e) for e in uow.outbox] == [SlaBreached, RerouteRequested]
    reroute = uow.outbox[1]
    assert isinstance(reroute, RerouteRequested)
    assert reroute.assignment_id == event.assignment_id and reroute.requested_by == "sla-monitor"
    by_type: dict[str, list[str]] = {}
    for row in uow.webhooks.values():
        by_type.setdefault(row["event_type"], []).append(row["endpoint_id"])
    assert by_type == {
        "sla.warning": ["ops"],
        "sla.breached": ["ops", "slack", "pd"],
        "sla.escalated": ["ops", "pd"],
        "sla.reroute_requested": ["ops"],
    }
    escalated = next(r for r in uow.webhooks.values() if r["event_type"] == "sla.escalated")
    summary = escalated["payload"]["data"]["summary"]
    assert "escalated to Sam (mgr-sam), manager of Rep-Ana" in summary


def _rerouted(request: RerouteRequested, owner: str, at: datetime) -> LeadAssigned:
    """What router answers a re-route request with: a reassignment it caused."""
    return assigned(request.lead_id, owner=owner, at=at).model_copy(
        update={"reassignment": True, "cause_event_id": request.event_id}
    )


async def test_a_lead_nobody_works_is_re_routed_max_reroutes_times_then_escalation_ends_it() -> (
    None
):
    """Without a bound, an unworked lead went from rep to rep for ever, each time with a
    breach, an escalation and a critical re-route alert. ``max_reroutes`` (2 by default) counts
    the re-routes sla-monitor asked for in a row; an operator's re-route starts the count
    again."""
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-r"))
    at, owners = T0, iter(["rep-ben", "rep-cleo", "rep-dan"])
    for _ in range(2):
        at += timedelta(hours=2)
        for _ in range(4):
            await _fire(uow, at)
        request = uow.outbox[-1]
        assert isinstance(request, RerouteRequested)
        await _handle(uow, _rerouted(request, next(owners), at))
    third = next(c for c in uow.clocks.rows.values() if c.status == "open")
    assert third.facts is not None and third.facts.reroutes == 2
    assert third.reroute_at is None and third.escalate_at is not None
    at += timedelta(hours=2)
    assert [await _fire(uow, at) for _ in range(4)] == [["warning"], ["breach"], ["escalation"], []]
    assert sum(isinstance(e, RerouteRequested) for e in uow.outbox) == 2
    summary = [r for r in uow.webhooks.values() if r["event_type"] == "sla.escalated"][-1][
        "payload"
    ]["data"]["summary"]
    assert "not re-routed again: re-routed 2 time(s) in a row already" in summary
    # An operator moves the lead on: that is a fresh start, with a re-route level again.
    manual = RerouteRequested(lead_id="lead-r", occurred_at=at, reason="ops", requested_by="ops")
    await _handle(uow, _rerouted(manual, next(owners), at))
    fourth = next(c for c in uow.clocks.rows.values() if c.status == "open")
    assert fourth.facts is not None and fourth.facts.reroutes == 0
    assert fourth.reroute_at is not None
    # The count is kept with the clock's facts in the database.
    assert clock_of(SimpleNamespace(**row_of(third))).facts == third.facts


def test_max_reroutes_is_a_policy_setting() -> None:
    text = CONFIG_TEXT.replace(
        "    reroute_after: 20m\n", "    reroute_after: 20m\n    max_reroutes: 0\n"
    )
    hot = parse(text).policy("hot")
    assert hot is not None and hot.max_reroutes == 0
    h = domain.Handoff("l", uuid.uuid4(), Stage.MQL, domain.Person("rep-ana", "Ana"), "t", T0)
    assert domain.start_clock(h, hot, "v").reroute_at is None
    with pytest.raises(PolicyError, match="max_reroutes"):
        parse(
            CONFIG_TEXT.replace(
                "    reroute_after: 20m\n", "    reroute_after: 20m\n    max_reroutes: -1\n"
            )
        )


async def test_breached_lead_worked_later_sends_the_resolve_notice() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-2"))
    await _fire(uow, T0 + timedelta(minutes=16))
    await _fire(uow, T0 + timedelta(minutes=16))
    assert uow.alerts.levels() == ["warning", "breach"]
    await _handle(uow, activity("lead-2", at=T0 + timedelta(minutes=18)))
    assert uow.alerts.levels()[-1] == "resolved"
    resolved = [r for r in uow.webhooks.values() if r["event_type"] == "sla.resolved"]
    assert sorted(r["endpoint_id"] for r in resolved) == ["ops", "pd", "slack"]
    data = resolved[0]["payload"]["data"]
    assert "3m after the deadline" in data["summary"]
    first = uow.clocks.rows[uuid.UUID(data["clock_id"])]
    assert first.status == "worked"
    # The hot policy asks for a follow-up within an hour of the first touch.
    follow = [c for c in uow.clocks.rows.values() if c.phase == 1]
    assert len(follow) == 1 and follow[0].due_at == T0 + timedelta(minutes=78)
    assert await _fire(uow, T0 + timedelta(days=1)) == ["warning"]  # the follow-up's own clock


async def test_pagerduty_and_slack_bodies() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-pd"))
    await _fire(uow, T0 + timedelta(minutes=16))
    await _fire(uow, T0 + timedelta(minutes=16))
    await _handle(uow, feedback("lead-pd", "accepted", at=T0 + timedelta(minutes=17)))
    endpoints = CONFIG.endpoints()
    pd = [
        json.loads(body_for(endpoints["pd"], r["payload"]))
        for r in uow.webhooks.values()
        if r["endpoint_id"] == "pd"
    ]
    assert [b["event_action"] for b in pd] == ["trigger", "resolve"]
    assert pd[0]["dedup_key"] == pd[1]["dedup_key"] and pd[0]["routing_key"] == "rk-1"
    assert pd[0]["payload"]["severity"] == "error" and "breached" in pd[0]["payload"]["summary"]
    assert "payload" not in pd[1]
    slack = [
        json.loads(body_for(endpoints["slack"], r["payload"]))
        for r in uow.webhooks.values()
        if r["endpoint_id"] == "slack"
    ]
    assert slack[0]["text"].startswith("[sla.breached] first-touch SLA (hot) breached")


async def test_worked_in_time_means_no_alert_and_no_resolve() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-3", grade="C"))  # standard policy, 4 working hours
    await _handle(uow, activity("lead-3", at=T0 + timedelta(minutes=3)))
    assert await _fire(uow, T0 + timedelta(days=3)) == []
    assert uow.webhooks == {} and uow.alerts.rows == {}


async def test_activity_seen_before_the_assignment_still_counts() -> None:
    uow = FakeSlaUow()
    await _handle(uow, activity("lead-4", at=T0 + timedelta(minutes=1)))
    await _handle(uow, assigned("lead-4"))
    assert [c.status for c in uow.clocks.rows.values() if c.phase == 0] == ["worked"]


async def test_a_batch_is_handled_as_its_events_one_by_one_in_order() -> None:
    """One poll, one transaction: a later event sees what an earlier one wrote (the touch finds
    the clock the assignment started), a redelivery inside the batch counts once, and events
    sla-monitor does not act on are left out."""
    lead = "lead-batch"
    start = assigned(lead)
    touch = activity(lead, at=T0 + timedelta(minutes=2))
    other = assigned("lead-batch-2")
    uow = FakeSlaUow()
    sent = await handlers.handle_batch(
        [form(), start, touch, start, other], uow=uow, config=lambda: CONFIG, now=lambda: T0
    )
    by_lead = sorted((c.lead_id, c.status) for c in uow.clocks.rows.values() if c.phase == 0)
    assert by_lead == [(lead, "worked"), ("lead-batch-2", "open")]
    assert uow.commits == 1
    assert not sent and not uow.outbox and not uow.webhooks  # nothing for relay or deliverer
    await _fire(uow, T0 + timedelta(minutes=16))
    await _fire(uow, T0 + timedelta(minutes=16))  # lead-batch-2 breached
    late = activity("lead-batch-2", at=T0 + timedelta(minutes=20))
    assert await handlers.handle_batch(
        [late], uow=uow, config=lambda: CONFIG, now=lambda: T0
    )  # the resolve notice is queued


async def test_a_touch_by_another_rep_does_not_stop_the_clock() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-5"))
    await _handle(uow, activity("lead-5", at=T0 + timedelta(minutes=1), actor="rep-ben"))
    assert uow.clocks.statuses() == ["open"]


async def test_reassignment_restarts_the_clock_and_resolves_the_old_one() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-6"))
    await _fire(uow, T0 + timedelta(minutes=13))  # the warning
    second = assigned(
        "lead-6", owner="rep-ben", at=T0 + timedelta(minutes=14), grade="", engagement=0
    )
    second = second.model_copy(update={"fit_grade": None, "engagement_score": None})
    await _handle(uow, second)
    assert uow.clocks.statuses() == ["open", "reassigned"]
    new = next(c for c in uow.clocks.rows.values() if c.status == "open")
    assert new.owner.id == "rep-ben" and new.policy_id == "hot"  # scores kept from before
    assert new.due_at == T0 + timedelta(minutes=29)
    assert uow.alerts.levels() == ["warning", "resolved"]


async def test_rejection_closes_follow_ups_and_stage_changes_close_clocks() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-7"))
    await _handle(
        uow, feedback("lead-7", "rejected", reason="bad_timing", at=T0 + timedelta(minutes=2))
    )
    assert uow.clocks.statuses() == ["worked"]  # a reject is a first touch; no follow-up
    uow2 = FakeSlaUow()
    await _handle(uow2, assigned("lead-8", grade="C"))
    recycled = StageChanged(
        lead_id="lead-8",
        occurred_at=T0 + timedelta(minutes=5),
        from_stage=Stage.MQL,
        to_stage=Stage.RECYCLED,
        reasons=(),
        model_version="m",
        cause_event_id=uuid.uuid4(),
        lead=form().lead,
    )
    await _handle(uow2, recycled)
    assert uow2.clocks.statuses() == ["closed"]


async def test_accept_starts_the_sal_follow_up_clock() -> None:
    uow = FakeSlaUow()
    await _handle(uow, assigned("lead-9"))
    accept = feedback("lead-9", "accepted", at=T0 + timedelta(minutes=4))
    await _handle(uow, accept)
    sal = StageChanged(
        lead_id="lead-9",
        occurred_at=T0 + timedelta(minutes=4),
        from_stage=Stage.MQL,
        to_stage=Stage.SAL,
        reasons=(),
        model_version="m",
        cause_event_id=accept.event_id,
        lead=form().lead,
    )
    await _handle(uow, sal)
    clocks = sorted(uow.clocks.rows.values(), key=lambda c: c.started_at)
    assert [(c.stage, c.phase, c.status) for c in clocks] == [
        (Stage.MQL, 0, "worked"),
        (Stage.MQL, 1, "closed"),
        (Stage.SAL, 0, "open"),
    ]
    assert clocks[2].due_at == T0 + timedelta(minutes=124) and clocks[2].owner.id == "rep-ana"
