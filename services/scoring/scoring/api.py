"""scoring's HTTP entrypoint: lead profiles and their timelines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared.web import problem

from . import views
from .errors import LeadNotFound

router = APIRouter(prefix="/v1", tags=["leads"])


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]


@router.get("/leads/{lead_id}")
async def get_lead(lead_id: str, engine: EngineDep) -> dict[str, Any]:
    """The lead's profile, scores and stage."""
    found = await views.lead(engine, lead_id)
    if found is None:
        raise LeadNotFound(lead_id)
    return found


@router.get("/leads/{lead_id}/timeline")
async def get_timeline(lead_id: str, engine: EngineDep) -> dict[str, Any]:
    """Every event, score and stage change of the lead, in order, with reasons."""
    entries = await views.timeline(engine, lead_id)
    if not entries:
        raise LeadNotFound(lead_id)
    return {"lead_id": lead_id, "entries": entries}


async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
    return problem(404, "Lead not found", f"lead_id: no lead {exc}",
                   type_="https://leadrelay.dev/problems/not-found")
