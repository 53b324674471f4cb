"""router's HTTP entrypoint: assignment records and the webhook delivery queue."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from leadrelay_shared import delivery
from leadrelay_shared.web import problem

from . import views
from .adapters import orm
from .errors import NotFound

router = APIRouter(prefix="/v1", tags=["routing"])


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
Status = Literal["pending", "delivered", "dead", "gone"]


@router.get("/assignments/{assignment_id}")
async def get_assignment(assignment_id: uuid.UUID, engine: EngineDep) -> dict[str, Any]:
    """The decision record: team, chosen rep, candidates, who was skipped and why."""
    found = await views.assignment(engine, assignment_id)
    if found is None:
        raise NotFound(f"assignment_id: no assignment {assignment_id}")
    return found


@router.get("/deliveries")
async def list_deliveries(engine: EngineDep, status: Status | None = None,
                          lead_id: str | None = None,
                          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    return {"items": await views.deliveries(engine, status=status, lead_id=lead_id, limit=limit)}


@router.post("/deliveries/{delivery_id}/replay")
async def replay_one(delivery_id: str, engine: EngineDep, request: Request) -> dict[str, int]:
    count = await delivery.replay(engine, orm.deliveries, [delivery_id])
    if count == 0:
        raise NotFound(f"delivery_id: no delivery {delivery_id}")
    request.app.state.deliverer.wake()
    return {"replayed": count}


@router.post("/deliveries/replay")
async def replay_bulk(engine: EngineDep, request: Request, status: Status = "dead"
                      ) -> dict[str, int]:
    """Replay every delivery in ``status`` (dead by default)."""
    count = await delivery.replay(engine, orm.deliveries, status=status)
    request.app.state.deliverer.wake()
    return {"replayed": count}


async def on_not_found(_: Request, exc: Exception) -> JSONResponse:
    return problem(404, "Not found", str(exc), type_="https://leadrelay.dev/problems/not-found")
