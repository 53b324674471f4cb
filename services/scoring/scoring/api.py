"""scoring's HTTP entrypoint: lead profiles, timelines, erasure and the active model.

Every route needs ``Authorization: Bearer`` with ``SCORING_READ_TOKEN`` or ``SCORING_ADMIN_TOKEN``
(the bootstrap includes this router with ``require_reader``); erasure needs the admin token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from leadrelay_shared.clock import utcnow
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

from . import handlers, simulation, views
from .adapters.config_store import ModelStore
from .adapters.repository import ScoringUnitOfWork
from .config import parse
from .errors import LeadNotFound
from .schemas import Erased, EraseIn, Lead, ModelSummary, ScoringSimulation, Timeline

router = APIRouter(prefix="/v1", tags=["leads"])


async def get_models(request: Request) -> ModelStore:
    models: ModelStore = request.app.state.models
    return models


ModelsDep = Annotated[ModelStore, Depends(get_models)]


@router.get("/leads/{lead_id}", response_model=Lead)
async def get_lead(lead_id: str, engine: EngineDep, models: ModelsDep) -> dict[str, Any]:
    """The lead's profile, scores (stored, and engagement decayed to now), stage and passes."""
    found = await views.lead(engine, lead_id, models.current, utcnow())
    if found is None:
        raise LeadNotFound(lead_id)
    return found


@router.get("/leads/{lead_id}/timeline", response_model=Timeline)
async def get_timeline(lead_id: str, engine: EngineDep) -> dict[str, Any]:
    """Every event, score and stage change of the lead, who router gave it to and why, its SLA
    breaches and re-route requests, in order, with reasons."""
    entries = await views.timeline(engine, lead_id)
    if not entries:
        raise LeadNotFound(lead_id)
    return {"lead_id": lead_id, "entries": entries}


@router.post("/leads/{lead_id}/erase", dependencies=[Admin], response_model=Erased)
async def erase_lead(
    lead_id: str, engine: EngineDep, wake: WakeDep, body: Annotated[EraseIn | None, Body()] = None
) -> dict[str, Any]:
    """Erase the lead's personal data (GDPR art. 17) and publish ``lead.erased`` so every service
    scrubs its copy. Erasing twice is harmless and returns the first erasure's time."""
    erased_at = await handlers.erase(
        lead_id,
        uow=ScoringUnitOfWork(engine),
        now=utcnow(),
        requested_by=body.requested_by if body else None,
    )
    wake()
    return {"lead_id": lead_id, "erased_at": erased_at}


@router.get("/scoring/model", tags=["model"], response_model=ModelSummary)
async def get_model(models: ModelsDep) -> dict[str, Any]:
    """The active scoring model: version, checksum and its shape."""
    return views.model_summary(models.current)


@router.post(
    "/scoring/simulate",
    tags=["model"],
    response_model=ScoringSimulation,
    responses=AS_CSV,
    dependencies=[ReplaySlot],
)
async def simulate(
    request: Request,
    engine: EngineDep,
    models: ModelsDep,
    span: WindowDep,
    leads: Literal["changed", "all"] = "changed",
) -> Any:
    """Re-score the leads active in the window under a candidate model (the body: a model file,
    YAML or JSON) from their stored events at the moments they happened, beside where the
    active model left them, and say what would change: MQLs per source and campaign, grades,
    and the leads that end in another stage. Changes nothing. As CSV: one row per lead."""
    text = (await request.body()).decode("utf-8", errors="replace")
    candidate = parse(text, "request body")
    result = await views.what_if(engine, models.current, candidate, *span)
    if wants_csv(request):
        return as_csv([c.row() for c in result.leads], "rescored")
    return simulation.answer(result, every_lead=leads == "all")


async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
    return problem(
        404,
        "Lead not found",
        f"lead_id: no lead {exc}",
        type_="https://leadrelay.dev/problems/not-found",
    )


on_model_error = on_invalid_file("Invalid scoring model", "invalid-model")
