from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from leadrelay_shared.contracts import LeadAssigned, LeadErased, Reason, Stage, StageChanged
from leadrelay_shared.privacy import ERASED
from router import config, domain, handlers
from router.config import RepConfig, RoutingConfig, TeamConfig
from router.errors import ConfigError
from tests.factories import T0, form
from tests.unit.fakes import FakeRouterUow

SECRET = "whsec_dGVzdC1zZWNyZXQtZm9yLXVuaXQtdGVzdHM="


def team(*reps: RepConfig) -> TeamConfig:
    return TeamConfig(id="sdr", name="SDR", reps=reps)


REPS = tuple(RepConfig(id=f"rep-{i}", name=f"Rep {i}") for i in range(4))


def routing(webhooks: bool = True) -> RoutingConfig:
    return RoutingConfig.model_validate({
        "version": "t1", "teams": [{"id": "sdr", "name": "SDR", "reps": [r.model_dump() for r in REPS]}],
        "webhooks": [{"id": "crm", "url": "http://crm.invalid/hook", "secret": SECRET}] if webhooks else [],
    })


def test_round_robin_is_fair_over_thousands() -> None:
    pointer, counts = 0, Counter[str]()
    for _ in range(3001):
        decision = domain.round_robin(team(*REPS), pointer, T0)
        assert decision.rep is not None
        counts[decision.rep.id] += 1
        pointer = decision.pointer_after
        assert max(counts.values()) - min(counts.get(r.id, 0) for r in REPS) <= 1


def test_inactive_reps_are_skipped_and_said_so() -> None:
    reps = (REPS[0], RepConfig(id="rep-off", name="Off", active=False), REPS[2])
    decision = domain.round_robin(team(*reps), 1, T0)
    assert decision.rep == REPS[2]
    assert decision.skipped == (Reason(rule_id="rep.inactive", message="rep-off is deactivated"),)
    assert decision.pointer_before == 1 and decision.pointer_after == 0


def test_nobody_available() -> None:
    off = RepConfig(id="x", name="X", active=False)
    decision = domain.round_robin(team(off), 0, T0)
    assert decision.rep is None and decision.reasons[0].rule_id == "rr.none_available"


def stage_changed(to: Stage = Stage.MQL) -> StageChanged:
    f = form()
    return StageChanged(lead_id=f.lead_id, occurred_at=T0, from_stage=Stage.INQUIRY, to_stage=to,
                        reasons=(Reason(rule_id="mql.fit_threshold", message="fit"),),
                        model_version="m1", cause_event_id=f.event_id, lead=f.lead)


async def test_handler_assigns_emits_and_queues_one_webhook_idempotently() -> None:
    uow = FakeRouterUow()
    event = stage_changed()
    await handlers.handle(event, uow=uow, config=routing(), now=lambda: T0)
    await handlers.handle(event, uow=uow, config=routing(), now=lambda: T0)
    assert [type(e) for e in uow.outbox] == [LeadAssigned]
    assigned = uow.outbox[0]
    assert isinstance(assigned, LeadAssigned) and assigned.owner.id == "rep-0"
    assert [r.rule_id for r in assigned.reasons] == ["mql.fit_threshold", "team.by_stage", "rr.next"]
    assert len(uow.webhooks) == 1
    (delivery_id, hook), = uow.webhooks.items()
    assert delivery_id.startswith("msg_") and hook["payload"]["type"] == "lead.assigned"
    assert hook["payload"]["data"]["owner"]["id"] == "rep-0"
    assert uow.pointers.positions == {"sdr": 1}


async def test_erasure_scrubs_the_outbox_and_the_webhook_queue() -> None:
    uow = FakeRouterUow()
    event = stage_changed()
    await handlers.handle(event, uow=uow, config=routing(), now=lambda: T0)
    erased = LeadErased(lead_id=event.lead_id, occurred_at=T0, erased_fields=("email",))
    await handlers.handle(erased, uow=uow, config=routing(), now=lambda: T0)
    (hook,) = uow.webhooks.values()
    lead = hook["payload"]["data"]["lead"]
    assert lead["email"] == ERASED and lead["company"] == "Northwind"
    assigned = uow.outbox[0]
    assert isinstance(assigned, LeadAssigned) and assigned.lead.email == ERASED


async def test_stages_not_routed_are_ignored() -> None:
    uow = FakeRouterUow()
    await handlers.handle(stage_changed(Stage.INQUIRY), uow=uow, config=routing(), now=lambda: T0)
    assert uow.outbox == [] and uow.commits == 0


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text("version: x\nteams:\n  - id: a\n    name: A\n    reps: []\n")
    with pytest.raises(ConfigError, match=r"teams\.0\.reps"):
        config.load(bad)
    bad.write_text("version: x\nteams: [{id: a, name: A, reps: [{id: r, name: R}]}]\n"
                   "webhooks: [{id: w, url: 'http://x', secret: 'plain'}]\n")
    with pytest.raises(ConfigError, match=r"webhooks\.0\.secret"):
        config.load(bad)


def test_shipped_config_is_valid() -> None:
    from router.settings import DEFAULT_CONFIG

    loaded = config.load(DEFAULT_CONFIG)
    assert loaded.team_for(Stage.MQL) is not None and uuid.UUID(int=0)
