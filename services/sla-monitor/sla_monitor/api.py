"""sla-monitor's HTTP entrypoint: clocks on the run, breaches, compliance, a lead's SLA history,
policy versions, and the alert delivery queue (``/v1/sla/deliveries``, ``/v1/sla/channels``).

Every route needs ``Authorization: Bearer`` (the bootstrap includes the routers with
``require_reader``): reads take ``$SLA_READ_TOKEN`` or ``$SLA_ADMIN_TOKEN``; replays and
re-enabling a channel take only the admin token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from leadrelay_shared.clock import utcnow
from leadrelay_shared.web import EngineDep

from . import views
from .config import SlaConfig
from .schemas import Alerts, Clocks, ComplianceReport, LeadSla, Policies
from .views import GroupBy

router = APIRouter(prefix="/v1/sla", tags=["sla"])


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/open", response_model=Clocks)
async def open_clocks(
    engine: EngineDep,
    lead_id: str | None = None,
    team_id: str | None = None,
    owner_id: str | None = None,
    policy_id: str | None = None,
    overdue: bool | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Leads on the clock, soonest due first, with the time left (negative when overdue)."""
    return {
        "items": await views.open_clocks(
            engine,
            now=utcnow(),
            limit=limit,
            overdue=overdue,
            lead_id=lead_id,
            team_id=team_id,
            owner_id=owner_id,
            policy_id=policy_id,
        )
    }


@router.get("/breaches", response_model=Clocks)
async def breaches(
    engine: EngineDep,
    lead_id: str | None = None,
    team_id: str | None = None,
    owner_id: str | None = None,
    policy_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Clocks that breached, newest first; ``since``/``until`` bound the breach time."""
    return {
        "items": await views.breaches(
            engine,
            now=utcnow(),
            limit=limit,
            since=since,
            until=until,
            lead_id=lead_id,
            team_id=team_id,
            owner_id=owner_id,
            policy_id=policy_id,
        )
    }


@router.get("/compliance", response_model=ComplianceReport)
async def compliance(
    engine: EngineDep,
    by: GroupBy = "rep",
    team_id: str | None = None,
    owner_id: str | None = None,
    policy_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """% of first touches within SLA and the median time to first touch, per rep, team or
    policy, over clocks started in [since, until)."""
    return {
        "by": by,
        "since": since,
        "until": until,
        "items": await views.compliance(
            engine,
            by=by,
            now=utcnow(),
            since=since,
            until=until,
            team_id=team_id,
            owner_id=owner_id,
            policy_id=policy_id,
        ),
    }


@router.get("/alerts", response_model=Alerts)
async def alerts(
    engine: EngineDep,
    level: str | None = None,
    lead_id: str | None = None,
    team_id: str | None = None,
    owner_id: str | None = None,
    policy_id: str | None = None,
    since: datetime | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    return {
        "items": await views.alerts(
            engine,
            level=level,
            since=since,
            limit=limit,
            lead_id=lead_id,
            team_id=team_id,
            owner_id=owner_id,
            policy_id=policy_id,
        )
    }


@router.get("/leads/{lead_id}", response_model=LeadSla)
async def lead(lead_id: str, engine: EngineDep) -> dict[str, Any]:
    """Every clock of a lead (policy, deadline and why, outcome) and every alert sent."""
    return await views.lead(engine, lead_id, utcnow())


@router.get("/policies", response_model=Policies)
async def policies(request: Request, engine: EngineDep) -> dict[str, Any]:
    config: SlaConfig = request.app.state.policies.current
    return {
        "version": config.version,
        "policies": [p.model_dump(mode="json") for p in config.spec.policies],
        "calendars": [c.model_dump(mode="json") for c in config.spec.calendars],
        "channels": [
            {
                "id": c.endpoint.id,
                "format": c.endpoint.format,
                "levels": sorted(c.levels),
                "enabled": c.endpoint.enabled,
            }
            for c in config.channels.values()
        ],
        "versions": await views.policy_versions(engine),
    }
