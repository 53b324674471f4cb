"""router's HTTP entrypoint: decisions, re-routing, configuration admin and the webhook queue.

Every route needs ``Authorization: Bearer`` (the bootstrap includes the routers with
``require_reader``): reads take ``$ROUTER_READ_TOKEN`` or ``$ROUTER_ADMIN_TOKEN``; every change
(configuration, re-route, replay, enabling an endpoint) takes only the admin token.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared import yamlconf
from leadrelay_shared.clock import utcnow
from leadrelay_shared.contracts import RerouteRequested
from leadrelay_shared.secretref import hide
from leadrelay_shared.web import (
    AS_CSV,
    Admin,
    EngineDep,
    ReplaySlot,
    WakeDep,
    WindowDep,
    as_csv,
    on_invalid_file,
    problem,
    wants_csv,
)

from . import admin, handlers, simulation, views
from .adapters import config_store
from .adapters.config_store import ConfigStore
from .adapters.repository import RouterUnitOfWork
from .config import (
    RoutingConfig,
    RoutingSpec,
    canonical,
    check_destinations,
    compile_config,
    from_document,
)
from .errors import ConfigError, NotFound
from .schemas import (
    Assignment,
    ConfigChange,
    ConfigCheck,
    ConfigDiff,
    ConfigVersions,
    LeadAssignments,
    RepStates,
    RerouteBody,
    RoutingConfigAnswer,
    Simulation,
)

router = APIRouter(prefix="/v1", tags=["routing"])


async def get_store(request: Request) -> ConfigStore:
    store: ConfigStore = request.app.state.configs
    return store


StoreDep = Annotated[ConfigStore, Depends(get_store)]


@router.get("/assignments/{assignment_id}", response_model=Assignment)
async def get_assignment(assignment_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    """The decision record: account, territory, team, candidates, who was skipped and why, the
    strategy with its pointer before and after, and the configuration version."""
    found = await views.assignment(engine, assignment_id)
    if found is None:
        raise NotFound(f"assignment_id: no assignment {assignment_id}")
    return found


@router.get("/leads/{lead_id}/assignments", response_model=LeadAssignments)
async def lead_timeline(lead_id: str, engine: EngineDep) -> dict[str, Any]:
    """Every assignment and re-route of a lead, oldest first, each with its summary."""
    items = await views.lead_assignments(engine, lead_id)
    if not items:
        raise NotFound(f"lead_id: no assignment for lead {lead_id}")
    return {"lead_id": lead_id, "owner": items[-1]["owner_id"], "items": items}


@router.post("/leads/{lead_id}/reroute", dependencies=[Admin], response_model=Assignment)
async def reroute(
    lead_id: str,
    body: RerouteBody,
    engine: EngineDep,
    store: StoreDep,
    wake: WakeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    """Give the lead to the next eligible rep, never the current owner."""
    event_id = (
        uuid.uuid5(uuid.NAMESPACE_URL, f"reroute/{lead_id}/{idempotency_key}")
        if idempotency_key
        else uuid.uuid4()
    )
    event = RerouteRequested(
        event_id=event_id,
        lead_id=lead_id,
        occurred_at=utcnow(),
        reason=body.reason,
        requested_by=body.requested_by,
        assignment_id=body.assignment_id,
    )
    outcomes = await handlers.handle(
        event, uow=RouterUnitOfWork(engine), config=store.current, now=utcnow
    )
    wake()
    assignment_id = uuid.uuid5(event_id, "assignment")
    if outcomes and outcomes[0].decision is None:
        raise NotFound(f"lead_id: {outcomes[0].note}")
    found = await views.assignment(engine, assignment_id)
    if found is None:
        raise NotFound(f"lead_id: no assignment for lead {lead_id}")
    return found


@router.get("/routing/config", response_model=RoutingConfigAnswer)
async def get_config(store: StoreDep) -> dict[str, Any]:
    """The active configuration; webhook secrets given in clear are hidden, references shown."""
    doc = store.current.document()
    return {
        "version": store.current.version,
        "document": doc | {"webhooks": hide(doc.get("webhooks", []), "secret")},
    }


@router.get("/routing/config/versions", response_model=ConfigVersions)
async def config_versions(engine: EngineDep) -> dict[str, Any]:
    return {"items": await config_store.versions(engine)}


@router.get("/routing/config/diff", response_model=ConfigDiff)
async def config_diff(
    engine: EngineDep,
    from_version: Annotated[str, Query(alias="from")],
    to_version: Annotated[str, Query(alias="to")],
) -> dict[str, Any]:
    """What changed from one stored version to another (secrets only said to have changed)."""
    found = await config_store.documents(engine, [from_version, to_version])
    for field, version in (("from", from_version), ("to", to_version)):
        if version not in found:
            raise NotFound(f"{field}: no configuration version {version}")
    return {
        "from_version": from_version,
        "to_version": to_version,
        "diff": admin.diff(found[from_version], found[to_version]),
    }


@router.get("/routing/reps", response_model=RepStates)
async def rep_states(engine: EngineDep, store: StoreDep) -> dict[str, Any]:
    """Every rep with their state now: available, or why not (paused, out of office, outside
    working hours, at capacity), today's and this week's load against their caps."""
    now = utcnow()
    config = store.current
    return {
        "version": config.version,
        "at": now,
        "items": await views.rep_states(engine, config, now),
    }


async def _document(request: Request) -> dict[str, Any]:
    """A configuration from the body, YAML or JSON (JSON is YAML)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    spec = yamlconf.validate(
        RoutingSpec,
        text,
        "request body",
        error=ConfigError,
        aliases={"from_": "from"},
        what="routing configuration",
    )
    if spec.accounts_csv:
        raise ConfigError(
            "request body",
            [
                (
                    "accounts_csv: not allowed through the API; import "
                    "accounts with POST /v1/routing/accounts/import"
                )
            ],
        )
    return canonical(spec)


@router.post("/routing/config/check", response_model=ConfigCheck)
async def check_config(request: Request, store: StoreDep) -> dict[str, Any]:
    """Validate a configuration without applying it, and say what it would change."""
    candidate = _checked(
        request, compile_config(from_document(await _document(request), "request body"))
    )
    return {
        "valid": True,
        "version": candidate.version,
        "diff": admin.diff(store.current.document(), candidate.document()),
    }


def _checked(request: Request, config: RoutingConfig) -> RoutingConfig:
    """``config`` when router may call every webhook URL it names (``destinations``)."""
    return check_destinations(config, request.app.state.destinations, "request body")


async def _activate(
    request: Request, engine: AsyncEngine, store: ConfigStore, doc: dict[str, Any], source: str
) -> dict[str, Any]:
    before = store.current
    candidate = _checked(request, compile_config(from_document(doc, source)))
    await config_store.activate(engine, candidate, source, utcnow())
    await store.refresh(engine)
    return {
        "version": candidate.version,
        "previous": before.version,
        "diff": admin.diff(before.document(), candidate.document()),
    }


@router.post(
    "/routing/simulate", response_model=Simulation, responses=AS_CSV, dependencies=[ReplaySlot]
)
async def simulate(
    request: Request,
    engine: EngineDep,
    span: WindowDep,
    leads: Literal["changed", "all"] = "changed",
) -> Any:
    """Replay the leads routed in the window through a candidate configuration (YAML or JSON,
    as for ``PUT /v1/routing/config``) at the moments they were routed, and say what would
    change: per lead, per rep and per pool. Changes nothing. As CSV: one row per lead."""
    candidate = compile_config(from_document(await _document(request), "request body"))
    result = await views.what_if(engine, candidate, *span)
    if wants_csv(request):
        return as_csv([r.row() for r in result.leads], "simulation")
    return simulation.answer(result, every_lead=leads == "all")


@router.put("/routing/config", dependencies=[Admin], response_model=ConfigChange)
async def put_config(request: Request, engine: EngineDep, store: StoreDep) -> dict[str, Any]:
    """Replace the configuration; every router instance adopts it within seconds."""
    return await _activate(request, engine, store, await _document(request), "api:put")


@router.patch("/routing/reps/{rep_id}", dependencies=[Admin], response_model=ConfigChange)
async def patch_rep(
    request: Request, rep_id: str, changes: dict[str, Any], engine: EngineDep, store: StoreDep
) -> dict[str, Any]:
    """Pause or deactivate a rep, set out-of-office dates, capacity or working hours."""
    doc = admin.patch_rep(store.current.document(), rep_id, changes)
    return await _activate(request, engine, store, doc, f"api:rep:{rep_id}")


@router.post("/routing/accounts/import", dependencies=[Admin], response_model=ConfigChange)
async def import_accounts(
    request: Request,
    engine: EngineDep,
    store: StoreDep,
    mode: Literal["merge", "replace"] = "merge",
) -> dict[str, Any]:
    """Accounts from CSV (header: id,name,domains,aliases,owner; several values split by ';')."""
    text = (await request.body()).decode("utf-8-sig", errors="replace")
    doc, count = admin.import_accounts(store.current.document(), text, mode)
    return {
        "imported": count,
        **await _activate(request, engine, store, doc, f"api:accounts:{mode}"),
    }


async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
    return problem(404, "Not found", str(exc), type_="https://leadrelay.dev/problems/not-found")


on_config_error = on_invalid_file("Invalid routing configuration", "invalid-config")
