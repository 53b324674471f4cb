"""``make demo``'s own set-up, on the configurations it ships with."""

from __future__ import annotations

from devstack.demo import receiver_secrets
from devstack.stack import ROOT


def test_the_demo_receiver_knows_every_endpoint_it_stands_in_for() -> None:
    secrets = receiver_secrets(ROOT / "deploy" / "config" / "routing.yaml",
                               ROOT / "deploy" / "config" / "sla-demo.yaml")
    assert set(secrets) == {"crm", "ops", "slack", "pagerduty"}
    assert all(isinstance(s, str) and s for s in secrets.values())
