"""The scoring model file: validation names the line and field; `leadrelay scoring check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay_shared.contracts import LeadSnapshot
from scoring import cli
from scoring import config as scoring_config
from scoring import domain as scoring_domain
from scoring.config import default_text, facts, parse
from scoring.errors import ModelError

GOOD_HEAD = "version: t1\ngrades: {A: 70, B: 50, C: 30, D: 15}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ModelError) as err:
        parse(text, "m.yaml")
    return err.value.problems


def test_the_shipped_model_is_valid_and_versioned() -> None:
    model = parse(default_text())
    assert model.version == "default-2026.11" and len(model.checksum) == 64


def test_a_wrong_field_is_named_with_its_line() -> None:
    text = (
        GOOD_HEAD + "fit:\n  - id: a\n    field: titel\n    points: 1\n    present: true\n"
        "engagement: []\n"
    )
    [problem] = problems(text)
    assert problem.startswith("line 5: fit[0].field: Input should be 'email_domain'")


def test_each_problem_is_reported() -> None:
    text = GOOD_HEAD + (
        "fit:\n"
        "  - {id: a, field: title, points: many, in: [x]}\n"
        "  - {id: b, field: title, points: 1}\n"
        "engagement:\n"
        "  - {id: e, event: page_vue, points: 1}\n"
    )
    found = problems(text)
    assert found[0].startswith("line 4: fit[0].points: Input should be a valid integer")
    assert found[1].startswith("line 5: fit[1]: Value error, give exactly one test")
    assert found[2].startswith("line 7: engagement[0].event:")


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "version: x\ngrades: {A: 10, B: 50, C: 30, D: 15}\nfit: []\nengagement: []\n",
            "grades: minimums must fall from A to D",
        ),
        ("version: x\ngrades: {A: 70}\nfit: []\nengagement: []\n", "give a minimum for B, C, D"),
        (
            GOOD_HEAD + "fit: []\nengagement:\n  - {id: e, event: page_view, points: 1}\n"
            "  - {id: e, event: email_open, points: 1}\n",
            "rule ids must be unique (e)",
        ),
        (GOOD_HEAD + "fit: []\nengagement: []\nsurprise: 1\n", "line 5: surprise: Extra inputs"),
        ("version: [unclosed\n", "line 2: not valid YAML"),
        ("- a list\n", "the model must be a mapping"),
    ],
)
def test_model_level_problems(text: str, expected: str) -> None:
    assert any(expected in p for p in problems(text)), problems(text)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(default_text())
    bad.write_text(GOOD_HEAD + "fit: []\nengagement:\n  - {id: e, event: page_view, points: x}\n")
    assert cli.check(good) == 0
    assert "ok — version default-2026.11, 11 fit rules" in capsys.readouterr().out
    assert cli.check(bad) == 1
    assert "line 5: engagement[0].points" in capsys.readouterr().err
    assert cli.check(tmp_path / "missing.yaml") == 2


def test_configuration_files_are_read_with_libyaml_where_the_wheel_has_it() -> None:
    """Every configuration (models, routing, policies) goes through ``yamlconf``; in pure Python
    the router's 10,000-account file took seconds to load at every start and reload."""
    import yaml

    from leadrelay_shared import yamlconf

    assert yaml.__with_libyaml__
    assert yamlconf.LOADER is yaml.CSafeLoader


# -- fit rules compiled per field --------------------------------------------------------------

EVERY_TEST = (
    GOOD_HEAD
    + """fit:
  - {id: f.free, field: is_free_email, equals: true, points: -20}
  - {id: f.biz, field: is_free_email, equals: false, points: 20}
  - {id: f.senior, field: title, any_word: [vp, head, vice president], points: 25}
  - {id: f.ops, field: title, contains: ops, points: 3}
  - {id: f.company, field: company, present: true, points: 10}
  - {id: f.no_company, field: company, present: false, points: -5}
  - {id: f.core, field: company_size, between: [50, 5000], points: 15}
  - {id: f.big, field: company_size, gte: 5001, points: 10}
  - {id: f.sector, field: industry, in: [software, it services], points: 10}
  - {id: f.us, field: country, equals: US, points: 10}
  - {id: f.region, field: region, in: [ca, ny], points: 2}
  - {id: f.domain, field: email_domain, contains: ".io", points: 1}
  - {id: f.title_given, field: title, present: true, points: 1}
engagement: []
"""
)
TEXT = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "",
            "  VP Sales ",
            "head of DevOps",
            "Vice President, IT",
            "Engineer",
            "IT Services",
            "us",
            "US",
            "software",
            "CA",
            "acme.io",
            "Ops",
        ]
    ),
    st.text(max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(
    title=TEXT,
    company=TEXT,
    industry=TEXT,
    country=TEXT,
    region=TEXT,
    domain=TEXT,
    size=st.one_of(st.none(), st.integers(-5, 9000)),
    free=st.booleans(),
)
def test_fit_matched_per_field_equals_every_rule_tested_on_the_whole_lead(
    title: str | None,
    company: str | None,
    industry: str | None,
    country: str | None,
    region: str | None,
    domain: str | None,
    size: int | None,
    free: bool,
) -> None:
    """``domain.fit_matches`` (rules grouped by field, what holds memoised per value) gives
    exactly the rules that hold when each is tested on all of the lead's facts, in the model's
    order; a lead without an email domain says nothing about free mail."""
    model = parse(EVERY_TEST)
    lead = LeadSnapshot(
        title=title,
        company=company,
        industry=industry,
        country=country,
        region=region,
        email_domain=domain,
        company_size=size,
        is_free_email=free,
    )
    known = facts(lead)
    if not domain:
        known["is_free_email"] = None
    expected = [r for r in model.fit_rules if r.test(known)]
    assert scoring_domain.fit_matches(model, lead) == expected
    assert scoring_domain.fit_matches(model, lead) == expected  # and again, from the memo


def test_the_fit_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scoring_config, "FIT_MEMO_MAX", 50)
    model = parse(EVERY_TEST)
    for size in range(500):
        held = {r.id for r in scoring_domain.fit_matches(model, LeadSnapshot(company_size=size))}
        assert ("f.core" in held) == (50 <= size <= 5000)
    assert len(model.fit_memo) <= 50
