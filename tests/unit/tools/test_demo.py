"""``make demo``'s own set-up, on the configurations it ships with."""

from __future__ import annotations

from devstack.demo import LEADS, people, receiver_secrets
from devstack.stack import ROOT
from router.settings import DEFAULT_CONFIG


def test_the_demo_receiver_knows_every_endpoint_it_stands_in_for() -> None:
    secrets = receiver_secrets(DEFAULT_CONFIG, ROOT / "deploy" / "config" / "sla-demo.yaml")
    assert set(secrets) == {"crm", "ops", "slack", "pagerduty"}
    assert all(isinstance(s, str) and s for s in secrets.values())


def test_each_demo_run_posts_new_people_at_the_same_domains() -> None:
    first, second = people("a1b2c3"), people("d4e5f6")
    assert first[0]["email"] == "ada.lovelace+a1b2c3@northwind.example"
    assert {p["email"] for p in first}.isdisjoint(p["email"] for p in second)
    assert [p["email"].split("@")[1] for p in first] == [p["email"].split("@")[1] for p in LEADS]
    assert [{**p, "email": None} for p in first] == [{**p, "email": None} for p in LEADS]
