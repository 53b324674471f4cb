"""analytics' HTTP entrypoint: the waterfall and the planner under ``/v1``.

Every route needs ``Authorization: Bearer`` with ``$ANALYTICS_READ_TOKEN`` or
``$ANALYTICS_ADMIN_TOKEN``. Every table answers as CSV when asked with ``Accept: text/csv``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from leadrelay_shared.clock import utcnow
from leadrelay_shared.web import EngineDep

from . import domain, views
from .schemas import PlanIn, PlanOut, Waterfall
from .views import By, Cut

router = APIRouter(prefix="/v1", tags=["funnel"])
CSV = "text/csv"
AS_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {CSV: {}}, "description": "JSON, or CSV with `Accept: text/csv`"}
}


async def cut(
    since: Annotated[
        datetime | None, Query(description="start of the period (default: 90 days ago)")
    ] = None,
    until: Annotated[datetime | None, Query(description="end of the period (default: now)")] = None,
    source: str | None = None,
    campaign: str | None = None,
    segment: str | None = None,
    territory: str | None = None,
    team: str | None = None,
    rep: str | None = None,
) -> Cut:
    end = until or utcnow()
    return Cut(
        since=since or end - timedelta(days=90),
        until=end,
        source=source,
        campaign=campaign,
        segment=segment,
        territory=territory,
        team=team,
        rep=rep,
    )


CutDep = Annotated[Cut, Depends(cut)]


def wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "")


def as_csv(rows: Sequence[dict[str, Any]], filename: str) -> Response:
    """Rows as CSV, columns in the order of the first row."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type=f"{CSV}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


@router.get("/waterfall", response_model=Waterfall, responses=AS_CSV)
async def get_waterfall(
    request: Request,
    engine: EngineDep,
    period: CutDep,
    by: By | None = None,
    horizon_days: Annotated[int | None, Query(ge=1, le=3650)] = None,
) -> Any:
    """Per stage: entries in the period, the balance now, cohort and period conversion to the
    next stage, and velocity; per month, week, day or dimension with ``by``."""
    horizon = horizon_days or request.app.state.settings.horizon_days
    groups = await views.waterfall(
        engine, period, by=by, horizon=timedelta(days=horizon), now=utcnow()
    )
    if wants_csv(request):
        return as_csv(views.flatten(groups), "waterfall")
    return {
        "since": period.since.isoformat(),
        "until": period.until.isoformat(),
        "by": by,
        "horizon_days": horizon,
        "groups": groups,
    }


@router.post("/plan", response_model=PlanOut, responses=AS_CSV)
async def post_plan(request: Request, engine: EngineDep, body: PlanIn) -> Any:
    """The reverse waterfall: how many deals, opportunities, SQLs, SALs, MQLs and inquiries the
    revenue target needs in the window, against each stage's run rate. Rates left out are the
    measured cohort conversions of the window; a deal size left out is the average won amount."""
    now = utcnow()
    window = Cut(since=now - timedelta(days=body.window_days), until=now)
    horizon = timedelta(days=request.app.state.settings.horizon_days)
    given = {k: v for k, v in body.rates.model_dump().items() if v is not None}
    measured = (
        await views.measured_rates(engine, window, horizon, now)
        if len(given) < len(domain.RATE_NAMES)
        else {}
    )
    deal = None if body.avg_deal_size is not None else (await views.average_won(engine, window))[0]
    result = domain.plan(
        revenue_target=body.revenue_target,
        avg_deal_size=body.avg_deal_size,
        measured_deal_size=deal,
        marketing_share=body.marketing_share,
        window_days=body.window_days,
        rates=given,
        measured=measured,
        run_rates=await views.run_rates(engine, window),
    )
    answer = asdict(result)
    if wants_csv(request):
        return as_csv(answer["stages"], "plan")
    return answer
