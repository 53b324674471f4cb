"""Where webhooks and alerts may go: https and public addresses outside development."""

from __future__ import annotations

import pytest

from leadrelay_shared.destinations import Destinations
from leadrelay_shared.settings import BackendSettings
from router import config
from router.errors import ConfigError

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXVuaXQtdGVzdHM="
STRICT = Destinations(https_only=True, allow_inside=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://crm.example/hook", "only https outside development"),
        ("https://127.0.0.1/hook", "127.0.0.1 is not a public address"),
        ("https://10.1.2.3/hook", "10.1.2.3 is not a public address"),
        ("https://[::1]:8443/hook", "::1 is not a public address"),
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is not a public address"),
        ("https://[fe80::1%25eth0]/hook", "is not a public address"),
        ("https://crm.example/hook", None),
        ("https://93.184.216.34/hook", None),
    ],
)
def test_outside_development_only_public_https_urls_are_called(url: str, why: str | None) -> None:
    refusal = STRICT.refusal(url)
    assert refusal is None if why is None else why in (refusal or "")


def test_development_calls_this_host_and_a_setting_can_allow_private_networks() -> None:
    development = Destinations.of(BackendSettings())
    assert development.refusal("http://127.0.0.1:8099/hooks/crm") is None
    production = Destinations.of(
        BackendSettings(environment="production", admin_token="a-real-token")
    )
    assert production.refusal("https://10.0.0.5/hook") is not None
    on_premises = Destinations.of(
        BackendSettings(
            environment="production", admin_token="a-real-token", allow_private_destinations=True
        )
    )
    assert on_premises.refusal("https://10.0.0.5/hook") is None
    assert on_premises.refusal("http://10.0.0.5/hook") is not None  # still https only


def test_a_routing_file_naming_an_inside_address_is_refused_with_the_field() -> None:
    text = f"""version: t
reps: [{{id: rep-a, name: A}}]
teams: [{{id: sdr, name: SDR, stages: [mql], members: [rep-a]}}]
webhooks:
  - {{id: crm, url: "https://crm.example/hook", secret: "{SECRET}"}}
  - {{id: meta, url: "https://169.254.169.254/latest", secret: "{SECRET}"}}
"""
    cfg = config.parse(text, "routing.yaml")
    with pytest.raises(ConfigError, match=r"webhooks\[1\]\.url: .*169\.254\.169\.254"):
        config.check_destinations(cfg, STRICT, "routing.yaml")
    assert config.check_destinations(cfg, Destinations(False, True), "routing.yaml") is cfg


PRODUCTION = Destinations.of(BackendSettings(environment="production", admin_token="a-real-token"))
ROUTING = """version: t
reps: [{{id: rep-a, name: A}}]
teams: [{{id: sdr, name: SDR, stages: [mql], members: [rep-a]}}]
webhooks:
  - {{id: crm, url: "https://crm.example/hook", secret: {secret}}}
"""


def test_outside_development_secrets_are_given_by_reference_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inline = config.parse(ROUTING.format(secret=f'"{SECRET}"'), "routing.yaml")
    with pytest.raises(ConfigError, match=r"webhooks\[0\]\.secret: give it as \{env: NAME\}"):
        config.check_destinations(inline, PRODUCTION, "routing.yaml")
    development = Destinations.of(BackendSettings())
    assert config.check_destinations(inline, development, "routing.yaml") is inline

    monkeypatch.setenv("CRM_SECRET", SECRET)
    referenced = config.parse(ROUTING.format(secret="{env: CRM_SECRET}"), "routing.yaml")
    assert config.check_destinations(referenced, PRODUCTION, "routing.yaml") is referenced


def test_an_sla_channel_names_its_secrets_by_reference_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sla_monitor import config as sla
    from sla_monitor.errors import PolicyError

    monkeypatch.setenv("OPS_SECRET", SECRET)
    text = """version: t
calendars: [{id: always, always: true}]
policies: [{id: mql, when: {stages: [mql]}, calendar: always, first_touch: 1h}]
channels:
  - {id: ops, type: webhook, url: "https://ops.example/hook", secret: {env: OPS_SECRET}}
  - {id: chat, type: slack, url: "https://hooks.slack.example/T1"}
  - {id: pager, type: pagerduty, url: "https://events.pd.example/v2/enqueue",
     routing_key: a-key-in-clear}
"""
    cfg = sla.parse(text, "sla.yaml")
    with pytest.raises(PolicyError) as refused:
        sla.check_destinations(cfg, PRODUCTION, "sla.yaml")
    assert "channels[2].routing_key: give it as {env: NAME}" in str(refused.value)
    assert "channels[0]" not in str(refused.value)  # a reference
    assert "channels[1]" not in str(refused.value)  # no secret given: nothing in the file
