"""sla-monitor's HTTP entrypoint: clocks on the run and breaches."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from . import views

router = APIRouter(prefix="/v1/sla", tags=["sla"])


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/open")
async def open_clocks(engine: EngineDep, lead_id: str | None = None, limit: Limit = 100
                      ) -> dict[str, Any]:
    """Leads on the clock, soonest due first, with the time left."""
    now = datetime.now(timezone.utc)
    return {"items": await views.clocks(engine, status="open", now=now, limit=limit,
                                        lead_id=lead_id)}


@router.get("/breaches")
async def breaches(engine: EngineDep, lead_id: str | None = None, limit: Limit = 100
                   ) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {"items": await views.clocks(engine, status="breached", now=now, limit=limit,
                                        lead_id=lead_id)}
