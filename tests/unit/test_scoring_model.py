"""The scoring model file: validation names the line and field; `leadrelay scoring check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from scoring import cli
from scoring.model import ModelError, default_text, parse

GOOD_HEAD = "version: t1\ngrades: {A: 70, B: 50, C: 30, D: 15}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(ModelError) as err:
        parse(text, "m.yaml")
    return err.value.problems


def test_the_shipped_model_is_valid_and_versioned() -> None:
    model = parse(default_text())
    assert model.version == "default-2026.11" and len(model.checksum) == 64


def test_a_wrong_field_is_named_with_its_line() -> None:
    text = GOOD_HEAD + "fit:\n  - id: a\n    field: titel\n    points: 1\n    present: true\n" \
        "engagement: []\n"
    [problem] = problems(text)
    assert problem.startswith("line 5: fit[0].field: Input should be 'email_domain'")


def test_each_problem_is_reported() -> None:
    text = GOOD_HEAD + (
        "fit:\n"
        "  - {id: a, field: title, points: many, in: [x]}\n"
        "  - {id: b, field: title, points: 1}\n"
        "engagement:\n"
        "  - {id: e, event: page_vue, points: 1}\n")
    found = problems(text)
    assert found[0].startswith("line 4: fit[0].points: Input should be a valid integer")
    assert found[1].startswith("line 5: fit[1]: Value error, give exactly one test")
    assert found[2].startswith("line 7: engagement[0].event:")


@pytest.mark.parametrize("text, expected", [
    ("version: x\ngrades: {A: 10, B: 50, C: 30, D: 15}\nfit: []\nengagement: []\n",
     "grades: minimums must fall from A to D"),
    ("version: x\ngrades: {A: 70}\nfit: []\nengagement: []\n",
     "give a minimum for B, C, D"),
    (GOOD_HEAD + "fit: []\nengagement:\n  - {id: e, event: page_view, points: 1}\n"
     "  - {id: e, event: email_open, points: 1}\n", "rule ids must be unique (e)"),
    (GOOD_HEAD + "fit: []\nengagement: []\nsurprise: 1\n", "line 5: surprise: Extra inputs"),
    ("version: [unclosed\n", "line 2: not valid YAML"),
    ("- a list\n", "the model must be a mapping"),
])
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
