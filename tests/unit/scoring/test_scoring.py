"""scoring's pure decisions: fit, decay, fast lanes, stages, feedback, timers, erasure."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay_shared import jsonio
from leadrelay_shared.contracts import LeadSnapshot, Stage
from scoring import domain, timeline
from scoring.adapters import repository
from scoring.config import ScoringModel, default_model, default_text, parse
from scoring.domain import TRANSITIONS, Actor, LeadProfile, TransitionRejected
from tests.factories import T0, engagement, feedback, form, lead_of, unique_email

MODEL = default_model()
DAY = timedelta(days=1)


def without_form_lane(model: ScoringModel = MODEL) -> ScoringModel:
    lane = "  - {id: fast.hand_raise_form, event: form_fill, min_grade: B}\n"
    text = (
        default_text().replace(lane, "").replace('version: "default-2026.11"', "version: no-lane")
    )
    return parse(text)


def mql_profile(email: str | None = None) -> LeadProfile:
    decision = domain.apply(None, form(email), MODEL, T0)
    assert decision.profile is not None and decision.profile.stage is Stage.MQL
    return decision.profile


# -- fit ---------------------------------------------------------------------------------------


def test_fit_rules_add_up_and_grade_the_lead() -> None:
    d = domain.apply(
        None, form(title="VP Engineering", company_size=250, industry="Software"), MODEL, T0
    )
    assert d.profile is not None
    ids = [p.rule_id for p in d.fit_parts]
    assert ids == [
        "fit.business_email",
        "fit.title.senior",
        "fit.company",
        "fit.size.core",
        "fit.industry",
        "fit.country",
    ]
    assert d.profile.fit_score == 90 and d.profile.fit_grade == "A"


@pytest.mark.parametrize(
    "score, grade", [(70, "A"), (69, "B"), (50, "B"), (30, "C"), (15, "D"), (14, "F"), (0, "F")]
)
def test_grade_floors(score: int, grade: str) -> None:
    assert domain.grade(MODEL, score) == grade


def test_fit_is_never_negative() -> None:
    d = domain.apply(
        None,
        form(
            unique_email(domain="gmail.com"),
            title="Student intern",
            company=None,
            country="ZZ",
            company_size=3,
        ),
        MODEL,
        T0,
    )
    assert d.profile is not None
    assert sum(p.points for p in d.fit_parts) < 0
    assert d.profile.fit_score == 0 and d.profile.fit_grade == "F"


def test_unknown_email_domain_is_neither_free_nor_business() -> None:
    d = domain.apply(None, engagement(lead_of(unique_email())), MODEL, T0)
    assert d.profile is not None and d.fit_parts == ()


@pytest.mark.parametrize(
    "title, senior",
    [
        ("VP Sales", True),
        ("Head of Data", True),
        ("Vice President, Ops", True),
        ("Developer", False),
        ("Supervisor", False),
        ("Overhead analyst", False),
    ],
)
def test_seniority_matches_words_not_substrings(title: str, senior: bool) -> None:
    d = domain.apply(None, form(title=title), MODEL, T0)
    assert ("fit.title.senior" in [p.rule_id for p in d.fit_parts]) is senior


# -- engagement and decay ----------------------------------------------------------------------


def test_engagement_halves_every_half_life() -> None:
    lead = lead_of(unique_email())
    p = domain.apply(None, engagement(lead, "webinar_attended"), MODEL, T0).profile
    assert p is not None
    assert domain.engagement(p.hits, MODEL, T0)[0] == 25
    assert domain.engagement(p.hits, MODEL, T0 + 30 * DAY)[0] == 12  # 12.5, rounded half-even
    assert domain.engagement(p.hits, MODEL, T0 + 60 * DAY)[0] == 6  # 6.25
    assert domain.engagement(p.hits, MODEL, T0 - DAY)[0] == 25  # a future hit does not grow


def test_each_rule_is_capped() -> None:
    lead, p = lead_of(unique_email()), None
    for i in range(12):
        p = (
            domain.apply(
                p,
                engagement(lead, "email_click", at=T0 + i * timedelta(minutes=1)),
                MODEL,
                T0 + DAY,
            ).profile
            or p
        )
    assert p is not None
    score, parts = domain.engagement(p.hits, MODEL, T0 + DAY)
    assert (
        score == 25
        and parts[0].message.startswith("12 × email click")
        and "cap 25" in parts[0].message
    )


def test_pricing_page_counts_more_than_another_page() -> None:
    lead = lead_of(unique_email())
    d = domain.apply(None, engagement(lead, url="https://x.example/pricing?plan=pro"), MODEL, T0)
    assert {p.rule_id: p.points for p in d.engagement_parts} == {
        "eng.pricing_page": 15,
        "eng.page_view": 2,
    }


def test_redelivered_event_adds_nothing() -> None:
    lead = lead_of(unique_email())
    event = engagement(lead, "content_download")
    first = domain.apply(None, event, MODEL, T0).profile
    again = domain.apply(first, event, MODEL, T0 + DAY)
    assert again.profile is None and again.ignored is not None
    assert again.ignored.rule_id == "event.duplicate"


KINDS = st.sampled_from(
    [
        "page_view",
        "email_open",
        "email_click",
        "content_download",
        "webinar_attended",
        "ad_click",
        "demo_requested",
        "product_signup",
    ]
)
URLS = st.sampled_from(
    [None, "https://x.example/pricing", "https://x.example/careers", "https://x.example/blog"]
)
EVENTS = st.lists(st.tuples(KINDS, URLS, st.integers(0, 400)), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.randoms(use_true_random=False))
def test_scores_depend_on_the_events_not_their_order(
    spec: list[tuple[str, str | None, int]], rnd: object
) -> None:
    lead = lead_of("prop@northwind.example")
    events = [engagement(lead, k, url=u, at=T0 + h * timedelta(hours=1)) for k, u, h in spec]
    now = T0 + 30 * DAY
    shuffled = list(events)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    results = []
    for order in (events, shuffled, events + events):  # the last one redelivers everything
        p = None
        for e in order:
            p = domain.apply(p, e, MODEL, now).profile or p
        assert p is not None
        results.append(domain.engagement(p.hits, MODEL, now))
    assert results[0] == results[1] == results[2]
    score, parts = results[0]
    assert score >= 0
    caps = {r.id: r.cap for r in MODEL.engagement_rules}
    assert all(abs(x.points) <= (caps[x.rule_id] or 10**6) for x in parts)


@settings(max_examples=150, deadline=None)
@given(EVENTS, st.randoms(use_true_random=False), st.integers(0, 600))
def test_kept_sums_equal_a_rebuild_whatever_the_order(
    spec: list[tuple[str, str | None, int]], rnd: object, later_h: int
) -> None:
    """The per-rule sums a profile carries (extended event by event, or rebuilt when a late
    event sorts earlier or old hits are pruned) are exactly those built afresh from its hits,
    and the score they give is the score of the hits alone."""
    lead = lead_of("sums@northwind.example")
    events = [engagement(lead, k, url=u, at=T0 + h * timedelta(hours=1)) for k, u, h in spec]
    rnd.shuffle(events)  # type: ignore[attr-defined]
    p = None
    for i, e in enumerate(events):
        now = max(e.occurred_at, T0 + i * timedelta(hours=1))
        p = domain.apply(p, e, MODEL, now).profile or p
        assert p is not None
        fresh = domain.hit_sums(p.hits, MODEL)
        assert (p.sums is None) == (fresh is None)
        if fresh is not None and p.sums is not None:
            assert domain.covers(p.sums, p.hits, MODEL) and p.sums.by_rule == fresh.by_rule
        assert p.engagement_score == domain.engagement(p.hits, MODEL, now)[0]
    assert p is not None
    later = T0 + later_h * DAY
    assert domain.engagement(p.hits, MODEL, later, p.sums) == domain.engagement(
        p.hits, MODEL, later
    )


def test_a_future_hit_is_worth_its_points_with_or_without_sums() -> None:
    lead = lead_of("future@northwind.example")
    p = domain.apply(None, engagement(lead, "webinar_attended", at=T0 + DAY), MODEL, T0).profile
    assert p is not None and p.engagement_score == 25  # not grown by the day ahead
    assert domain.engagement(p.hits, MODEL, T0, p.sums)[0] == 25


def test_sums_kept_under_another_half_life_are_not_used() -> None:
    lead = lead_of("halflife@northwind.example")
    p = domain.apply(None, engagement(lead, "webinar_attended"), MODEL, T0).profile
    p = domain.apply(p, engagement(lead, "email_click", at=T0 + DAY), MODEL, T0 + DAY).profile
    assert p is not None and p.sums is not None
    faster = parse(
        default_text().replace("engagement_half_life_days: 30", "engagement_half_life_days: 7")
    )
    later = T0 + 20 * DAY
    assert domain.engagement(p.hits, faster, later, p.sums) == domain.engagement(
        p.hits, faster, later
    )
    assert domain.engagement(p.hits, faster, later)[0] < domain.engagement(p.hits, MODEL, later)[0]


# -- qualification -----------------------------------------------------------------------------


def test_form_fill_from_a_fit_lead_is_a_fast_lane_mql() -> None:
    d = domain.apply(None, form(title="VP Engineering"), MODEL, T0)
    assert [t.to_stage for t in d.transitions] == [Stage.INQUIRY, Stage.MQL]
    reasons = {r.rule_id: r.message for r in d.transitions[1].reasons}
    assert "fast.hand_raise_form" in reasons and "grade B" in reasons["fast.hand_raise_form"]
    assert "business email" in reasons["mql.fit"]
    assert d.profile is not None and d.profile.cycle == 1


def test_unfit_lead_stays_an_inquiry() -> None:
    d = domain.apply(
        None, form(unique_email(domain="gmail.com"), title="Student", company=None), MODEL, T0
    )
    assert [t.to_stage for t in d.transitions] == [Stage.INQUIRY]


def test_demo_request_from_a_fit_lead_goes_straight_to_mql() -> None:
    model = without_form_lane()
    email = unique_email()
    p = domain.apply(None, form(email, title="CTO"), model, T0).profile
    assert p is not None and p.stage is Stage.INQUIRY
    d = domain.apply(p, engagement(p.lead_id, "demo_requested", at=T0 + DAY), model, T0 + DAY)
    assert d.transitions[0].to_stage is Stage.MQL
    assert d.transitions[0].reasons[0].rule_id == "fast.demo_request"


def test_engagement_threshold_makes_an_mql_with_both_reasons() -> None:
    model = without_form_lane()
    p = domain.apply(None, form(title="CTO"), model, T0).profile  # fit B, engagement 30
    assert p is not None and p.stage is Stage.INQUIRY
    d = domain.apply(p, engagement(p.lead_id, "webinar_attended"), model, T0)
    assert [t.to_stage for t in d.transitions] == [Stage.MQL]
    assert [r.rule_id for r in d.transitions[0].reasons] == ["mql.fit", "mql.engagement"]
    assert "engagement 55 reached 50" in d.transitions[0].reasons[1].message


def test_late_form_fills_only_what_is_missing() -> None:
    email = unique_email()
    newer = domain.apply(None, form(email, title="CTO", company=None, at=T0), MODEL, T0).profile
    late = domain.apply(
        newer, form(email, title="Intern", company="Northwind", at=T0 - DAY), MODEL, T0
    )
    assert late.profile is not None
    assert late.profile.snapshot.title == "CTO" and late.profile.snapshot.company == "Northwind"


# -- the stage machine -------------------------------------------------------------------------


@pytest.mark.parametrize("current", [None, *Stage])
def test_every_transition_and_actor_in_the_table(current: Stage | None) -> None:
    for target in Stage:
        for actor in Actor:
            allowed = actor in TRANSITIONS.get((current, target), frozenset())
            if allowed:
                assert domain.transition(current, target, actor, ()).to_stage is target
            else:
                with pytest.raises(TransitionRejected) as err:
                    domain.transition(current, target, actor, ())
                assert err.value.reason.rule_id in {"stage.forbidden", "stage.wrong_actor"}


def test_terminal_stages_have_no_way_out() -> None:
    assert domain.ALLOWED[Stage.WON] == domain.ALLOWED[Stage.DISQUALIFIED] == frozenset()


def test_wrong_actor_is_named_in_the_reason() -> None:
    with pytest.raises(TransitionRejected) as err:
        domain.transition(Stage.MQL, Stage.SAL, Actor.MARKETING, ())
    assert err.value.reason.message == "mql → sal is made by sales, not by marketing"


# -- sales feedback ----------------------------------------------------------------------------


def test_accept_gives_sal() -> None:
    p = mql_profile()
    d = domain.apply(p, feedback(p.lead_id, "accepted"), MODEL, T0)
    assert [(t.from_stage, t.to_stage, t.actor) for t in d.transitions] == [
        (Stage.MQL, Stage.SAL, Actor.SALES)
    ]
    assert d.transitions[0].reasons[0].message == "accepted by rep-ana"


@pytest.mark.parametrize(
    "reason, stage",
    [
        ("no_budget", Stage.RECYCLED),
        ("bad_timing", Stage.RECYCLED),
        ("spam", Stage.DISQUALIFIED),
        ("not_a_fit", Stage.DISQUALIFIED),
    ],
)
def test_reject_recycles_or_disqualifies_by_reason(reason: str, stage: Stage) -> None:
    p = mql_profile()
    d = domain.apply(p, feedback(p.lead_id, "rejected", reason=reason), MODEL, T0 + DAY)
    assert d.profile is not None and d.profile.stage is stage
    assert d.transitions[0].reasons[0].rule_id == f"feedback.rejected.{reason}"
    if stage is Stage.RECYCLED:
        assert "recycled to marketing nurture" in d.transitions[0].reasons[0].message
        assert d.profile.engagement_score == 0 and d.profile.engagement_since == T0 + DAY


def test_recycled_lead_requalifies_only_on_new_engagement() -> None:
    model = without_form_lane()
    p = domain.apply(None, form(title="CTO"), model, T0).profile
    p = domain.apply(p, engagement(p.lead_id, "demo_requested"), model, T0).profile  # type: ignore[union-attr]
    assert p is not None and p.stage is Stage.MQL and p.cycle == 1
    p = domain.apply(
        p, feedback(p.lead_id, "rejected", reason="bad_timing"), model, T0 + DAY
    ).profile
    assert p is not None and p.stage is Stage.RECYCLED
    later = T0 + 40 * DAY
    d = domain.apply(p, engagement(p.lead_id, "webinar_attended", at=later), model, later)
    assert d.transitions == () and d.profile is not None and d.profile.engagement_score == 25
    d = domain.apply(
        d.profile, engagement(p.lead_id, "product_signup", at=later + DAY), model, later + DAY
    )
    assert d.profile is not None and d.profile.stage is Stage.MQL and d.profile.cycle == 2
    assert "since it was recycled" in d.transitions[0].reasons[1].message


def test_convert_with_an_opportunity_then_won() -> None:
    p: LeadProfile | None = mql_profile()
    assert p is not None
    p = domain.apply(p, feedback(p.lead_id, "accepted"), MODEL, T0).profile
    assert p is not None
    d = domain.apply(p, feedback(p.lead_id, "converted", opportunity_id="006XYZ"), MODEL, T0)
    assert [t.to_stage for t in d.transitions] == [Stage.SQL, Stage.OPPORTUNITY]
    assert d.profile is not None
    d = domain.apply(d.profile, feedback(p.lead_id, "won"), MODEL, T0)
    assert [t.to_stage for t in d.transitions] == [Stage.WON]


def test_accept_and_convert_may_arrive_as_one_step() -> None:
    p = mql_profile()
    d = domain.apply(p, feedback(p.lead_id, "converted"), MODEL, T0)
    assert [t.to_stage for t in d.transitions] == [Stage.SAL, Stage.SQL]


@pytest.mark.parametrize(
    "first, then", [("accepted", "lost"), ("disqualified", "accepted"), (None, "lost")]
)
def test_forbidden_feedback_is_refused_with_a_reason(first: str | None, then: str) -> None:
    p: LeadProfile | None = mql_profile()
    assert p is not None
    if first:
        p = domain.apply(p, feedback(p.lead_id, first), MODEL, T0).profile
    assert p is not None
    d = domain.apply(p, feedback(p.lead_id, then), MODEL, T0)
    assert d.profile is None and d.transitions == ()
    assert d.refused[0].rule_id == "stage.forbidden"


def test_feedback_on_an_unknown_lead_is_refused() -> None:
    d = domain.apply(None, feedback(lead_of(unique_email()), "accepted"), MODEL, T0)
    assert d.profile is None and "from nothing to sal" in d.refused[0].message


def test_feedback_repeating_the_stage_changes_nothing() -> None:
    p: LeadProfile | None = mql_profile()
    assert p is not None
    p = domain.apply(p, feedback(p.lead_id, "accepted"), MODEL, T0).profile
    assert p is not None
    d = domain.apply(p, feedback(p.lead_id, "accepted"), MODEL, T0)
    assert d.profile is None and d.ignored is not None


# -- time ---------------------------------------------------------------------------------------


def test_unaccepted_mql_is_recycled_by_time_and_not_before() -> None:
    p = mql_profile()
    assert domain.on_time(p, MODEL, T0 + 13 * DAY).profile is None
    d = domain.on_time(p, MODEL, T0 + 14 * DAY)
    assert d.profile is not None and d.profile.stage is Stage.RECYCLED
    assert d.transitions[0].actor is Actor.TIME
    assert (
        d.transitions[0].reasons[0].message == "not accepted by sales within 14 days of "
        "becoming mql"
    )


def test_stale_inquiry_joins_nurture() -> None:
    p = domain.apply(None, form(unique_email(domain="gmail.com"), title=None), MODEL, T0).profile
    assert p is not None and p.stage is Stage.INQUIRY
    d = domain.on_time(p, MODEL, T0 + 30 * DAY)
    assert d.profile is not None and d.profile.stage is Stage.NURTURE


# -- erasure -----------------------------------------------------------------------------------


def test_erase_keeps_firmographics_and_ignores_older_events() -> None:
    email = unique_email()
    p = domain.apply(None, form(email, company_size=300), MODEL, T0).profile
    assert p is not None
    erased = domain.erase(p, T0 + DAY)
    assert erased.snapshot == LeadSnapshot(company="Northwind", country="GB", company_size=300)
    assert erased.stage is Stage.MQL and erased.fit_score == p.fit_score
    late = domain.apply(erased, form(email, at=T0), MODEL, T0 + 2 * DAY)
    assert late.profile is None and late.ignored is not None
    fresh = domain.apply(erased, form(email, at=T0 + 3 * DAY), MODEL, T0 + 3 * DAY)
    assert fresh.profile is not None and fresh.profile.snapshot.email == email


def test_profile_is_frozen() -> None:
    """A profile is never changed in place: every change is a new profile."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        mql_profile().stage = Stage.WON  # type: ignore[misc]


def test_hits_are_pruned_after_ten_half_lives() -> None:
    lead = lead_of(unique_email())
    p = domain.apply(None, engagement(lead, "ad_click", at=T0), MODEL, T0).profile
    d = domain.apply(
        p,
        engagement(lead, "ad_click", at=T0 + 301 * DAY, event_id=uuid.uuid4()),
        MODEL,
        T0 + 301 * DAY,
    )
    assert d.profile is not None and len(d.profile.hits) == 1


def test_hits_and_fit_lines_come_back_from_their_json_as_they_were() -> None:
    """What the repository stores for a profile's hits and fit explanation reads back as the
    same hits and parts, the hits in canonical order whatever order the stored list had."""
    lead = lead_of("stored@northwind.example")
    p = domain.apply(None, form(title="VP Engineering"), MODEL, T0).profile
    for k, kind in enumerate(["webinar_attended", "email_click", "page_view"]):
        p = domain.apply(p, engagement(lead, kind, at=T0 + k * DAY), MODEL, T0 + 3 * DAY).profile
    assert p is not None and len(p.hits) >= 3 and p.fit_parts
    stored = jsonio.loads(repository.hits_json(p.hits))
    back = repository.hits_from_json(list(reversed(stored)))
    assert back == p.hits and all(type(h) is domain.Hit for h in back)
    parts = repository.parts_from_json(jsonio.loads(repository.parts_json(p.fit_parts)))
    assert parts == tuple(
        domain.Part(x.rule_id, x.points, x.message, str(x.event_id)) for x in p.fit_parts
    )
    assert all(type(x) is domain.Part for x in parts)


def test_lines_as_data_say_what_each_line_says() -> None:
    """What lead.scored and the timeline carry for each line: its rule, points, sentence and
    cause as text, for parts computed now (a UUID cause) and loaded back (a text cause)."""
    lead = lead_of("lines@northwind.example")
    d = domain.apply(None, form(title="VP Engineering"), MODEL, T0)
    assert d.profile is not None
    d = domain.apply(d.profile, engagement(lead, "webinar_attended", at=T0), MODEL, T0 + DAY)
    loaded = repository.parts_from_json(jsonio.loads(repository.parts_json(d.fit_parts)))
    none = (domain.Part("fit.x", 1, "no cause", None), domain.Part("fit.y", 2, "empty", ""))
    for parts in (d.fit_parts, loaded, none):
        assert timeline.fit_lines_data(parts) == [
            {
                "rule_id": x.rule_id,
                "points": x.points,
                "message": x.message,
                "event_id": str(x.event_id) if x.event_id else None,
            }
            for x in parts
        ]
    assert d.engagement_parts and timeline.engagement_lines_data(d.engagement_parts) == [
        {"rule_id": x.rule_id, "points": x.points, "message": x.message, "event_id": x.event_id}
        for x in d.engagement_parts
    ]
