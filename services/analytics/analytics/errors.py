"""analytics' errors, and how the API answers them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from leadrelay_shared.web import problem

from .domain import PlanError


async def on_plan_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PlanError)
    return problem(
        422,
        "The plan cannot be made",
        str(exc),
        errors=[{"field": exc.field, "message": str(exc)}],
    )
