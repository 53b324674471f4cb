"""What-if replays of routing history: faithful under the configuration the history was routed
with, and exactly the hand-computed differences under a changed one."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from leadrelay_shared.contracts import LeadSnapshot, Stage
from router.config import RoutingConfig, compile_config, from_document
from router.simulation import Routed, Start, answer, simulate

# Monday 23 November 2026, 10:00 in Paris.
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WINDOW = (MONDAY_10, MONDAY_10 + timedelta(hours=1))
EMPTY = Start(pointers={}, loads={}, owners={})


def config(version: str, **overrides: Any) -> RoutingConfig:
    doc: dict[str, Any] = {
        "version": version,
        "timezone": "Europe/Paris",
        "reps": [{"id": r, "name": r.upper()} for r in "abcde"],
        "teams": [
            {
                "id": "sdr",
                "name": "SDR",
                "members": ["a", "b", "c"],
                "respect_working_hours": False,
            },
            {
                "id": "us-sdr",
                "name": "US SDR",
                "strategy": "weighted_round_robin",
                "members": [{"rep": "d", "weight": 1}, {"rep": "e", "weight": 1}],
                "respect_working_hours": False,
            },
        ],
        "territories": [{"id": "us", "countries": ["US"], "teams": {"mql": "us-sdr"}}],
        "default_teams": {"mql": "sdr"},
    }
    doc.update(overrides)
    return compile_config(from_document(doc))


BEFORE = config("v1")
# The three changes of the candidate: rep b out of office that Monday, a new territory for
# Germany with its own team (rep c), and rep d weighted 3 to e's 1.
AFTER = config(
    "v2",
    reps=[
        {"id": r, "name": r.upper()}
        | ({"out_of_office": [{"from": "2026-11-23", "to": "2026-11-23"}]} if r == "b" else {})
        for r in "abcde"
    ],
    teams=[
        {"id": "sdr", "name": "SDR", "members": ["a", "b", "c"], "respect_working_hours": False},
        {
            "id": "us-sdr",
            "name": "US SDR",
            "strategy": "weighted_round_robin",
            "members": [{"rep": "d", "weight": 3}, {"rep": "e", "weight": 1}],
            "respect_working_hours": False,
        },
        {"id": "dach", "name": "DACH", "members": ["c"], "respect_working_hours": False},
    ],
    territories=[
        {"id": "us", "countries": ["US"], "teams": {"mql": "us-sdr"}},
        {"id": "dach", "countries": ["DE"], "teams": {"mql": "dach"}},
    ],
)
COUNTRIES = ["FR", "US", "DE", "FR", "US", "FR", "DE", "US", "FR", "US"]
# Under v1, hand-computed: France and Germany go round robin through sdr (a, b, c, a, b, c),
# the United States alternate through us-sdr (d, e, d, e).
OWNERS_V1 = ["a", "d", "b", "c", "e", "a", "b", "d", "c", "e"]


def routed(i: int, owner: str | None, *, kind: str = "assign", country: str = "FR") -> Routed:
    team = None if owner is None else ("us-sdr" if owner in "de" else "sdr")
    return Routed(
        assignment_id=uuid.uuid5(uuid.NAMESPACE_URL, f"a{i}"),
        lead_id=f"lead-{i}",
        at=MONDAY_10 + timedelta(minutes=i),
        kind=kind,
        stage=Stage.MQL,
        lead=LeadSnapshot(company=f"Company {i}", country=country),
        owner_id=owner,
        queue=None,
        team_id=team,
        territory="us" if country == "US" else None,
        strategy="round_robin",
    )


HISTORY = [
    routed(i, o, country=c) for i, (o, c) in enumerate(zip(OWNERS_V1, COUNTRIES, strict=True))
]


def test_history_replayed_under_its_own_config_changes_nobody() -> None:
    sim = simulate(HISTORY, EMPTY, BEFORE, window=WINDOW, versions_before=["v1"])
    assert [r.after.rep_id for r in sim.leads] == OWNERS_V1
    assert sim.changed == ()
    assert {p.team_id: (p.before, p.after) for p in sim.pools} == {
        "sdr": (0, 0),
        "us-sdr": (0, 0),
    }


def test_a_changed_config_changes_exactly_what_a_hand_computation_says() -> None:
    sim = simulate(HISTORY, EMPTY, AFTER, window=WINDOW, versions_before=["v1"])
    # France: a, then b is out of office so c, then a, then c again (the pointer stepped past
    # b). Germany: the new dach team, only c. The United States: d, d, e, d (smooth weights).
    assert [r.after.rep_id for r in sim.leads] == ["a", "d", "c", "c", "d", "a", "c", "e", "c", "d"]
    assert [r.before.lead_id for r in sim.changed] == [
        "lead-2",
        "lead-4",
        "lead-6",
        "lead-7",
        "lead-9",
    ]
    assert {r.rep_id: (r.before, r.after, r.change) for r in sim.reps} == {
        "a": (2, 2, 0),
        "b": (2, 0, -2),
        "c": (2, 4, 2),
        "d": (2, 3, 1),
        "e": (2, 1, -1),
    }
    germany = sim.leads[2].after
    assert (germany.team_id, germany.territory) == ("dach", "dach")
    skipped = sim.leads[3].after.skipped
    assert skipped == (("b", "rep.out_of_office"),)
    pools = {p.team_id: (p.before, p.after) for p in sim.pools}
    # sdr: b gets nothing that day; us-sdr: 2 and 2 against weights 3 and 1 before, 3 and 1 after
    assert pools == {"dach": (None, 0), "sdr": (0, 2), "us-sdr": (1.33, 0)}
    out = answer(sim)
    assert out["leads_changed"] == 5 and len(out["leads"]) == 5
    assert out["summary"][1] == "5 would get another owner (50.0%)"
    assert "b 2 → 0 (-2)" in out["summary"][3]
    assert len(answer(sim, every_lead=True)["leads"]) == 10


def test_the_window_starts_from_the_state_it_found() -> None:
    """Pointers, loads and owners as the window opened: the pointer picks up at b, a's day is
    full already, and a re-route excludes the owner the lead had before the window."""
    capped = config(
        "v3",
        reps=[{"id": "a", "name": "A", "capacity": {"day": 1}}]
        + [{"id": r, "name": r.upper()} for r in "bcde"],
    )
    start = Start(
        pointers={"sdr": 1},
        loads={"a": {date(2026, 11, 23): 1}},
        owners={"lead-0": "b"},
    )
    history = [routed(0, "c", kind="reroute"), routed(1, "b"), routed(2, "c")]
    sim = simulate(history, start, capped, window=WINDOW)
    # the re-route skips b (its owner) and takes c; then b; then a is full, so c
    assert [r.after.rep_id for r in sim.leads] == ["c", "b", "c"]
    assert sim.changed == ()
    assert sim.leads[0].after.skipped == (("b", "rep.excluded"),)
    assert {r.rep_id: r.capacity_after for r in sim.reps}["a"] == 1
