"""The alert rules and dashboards ops load: the rules valid and each tested in promtool's own
format, and every metric a rule or a panel asks for one that leadrelay's services export.

``make tools`` builds promtool from the Go module proxy into ``.tools``."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from devstack.stack import ROOT

RULES = ROOT / "deploy" / "prometheus" / "leadrelay-rules.yaml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
METRIC = re.compile(r"\b((?:leadrelay|intake|process)_[a-z0-9_]+)")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = ROOT / ".tools" / "bin" / "promtool"
    if not binary.exists():
        pytest.fail("promtool is missing: run `make tools`")
    return subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=RULES.parent,
    )


def exported() -> set[str]:
    """The names of every sample leadrelay's services export (their modules imported)."""
    import analytics.bootstrap  # noqa: F401
    import intake.bootstrap  # noqa: F401
    import router.bootstrap  # noqa: F401
    import scoring.bootstrap  # noqa: F401
    import sla_monitor.bootstrap  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
            names.add(family.name + suffix)
    return names


def expressions(panel_or_rule: Any) -> list[str]:
    if isinstance(panel_or_rule, dict):
        found = [v for k, v in panel_or_rule.items() if k == "expr" and isinstance(v, str)]
        return found + [e for v in panel_or_rule.values() for e in expressions(v)]
    if isinstance(panel_or_rule, list):
        return [e for v in panel_or_rule for e in expressions(v)]
    return []


def test_the_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "leadrelay-rules.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((RULES.parent / "leadrelay-rules.test.yaml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
    assert alerts == tested


def test_rules_and_panels_ask_only_for_metrics_that_exist() -> None:
    known = exported()
    rules = yaml.safe_load(RULES.read_text())
    asked = expressions(rules)
    for path in DASHBOARDS:
        asked += expressions(json.loads(path.read_text()))
    assert asked
    missing = {m for e in asked for m in METRIC.findall(e)} - known
    assert not missing


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: Path(p).name)
def test_each_dashboard_is_self_contained(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"].startswith("leadrelay-")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    for panel in board["panels"]:  # data sources are chosen on import, never hard-wired
        assert panel["datasource"]["uid"].strip("${}") in variables
        assert panel["targets"]
