"""analytics' HTTP entrypoint under ``/v1``: the waterfall, speed to lead, leakage,
attribution, sourcing and the planner.

Every route needs ``Authorization: Bearer`` with ``$ANALYTICS_READ_TOKEN`` or
``$ANALYTICS_ADMIN_TOKEN``. Every table answers as CSV when asked with ``Accept: text/csv``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from leadrelay_shared.clock import utcnow
from leadrelay_shared.web import AS_CSV, EngineDep, as_csv, wants_csv

from . import domain, views
from .schemas import Attribution, Leakage, PlanIn, PlanOut, Sourcing, SpeedToLead, Waterfall
from .views import By, Cut

router = APIRouter(prefix="/v1", tags=["funnel"])


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


def _period(cut: Cut) -> dict[str, str]:
    return {"since": cut.since.isoformat(), "until": cut.until.isoformat()}


@router.get("/speed-to-lead", response_model=SpeedToLead, responses=AS_CSV)
async def get_speed_to_lead(
    request: Request, engine: EngineDep, period: CutDep, by: By | None = None
) -> Any:
    """Form fill to assignment (the system's part), assignment to the owner's first touch (the
    rep's part), and form fill to first touch: p50, p90, and how many within 5, 15 and 60
    minutes, per team, rep or time with ``by``."""
    groups = await views.speed_to_lead(engine, period, by=by)
    if wants_csv(request):
        return as_csv(groups, "speed-to-lead")
    return _period(period) | {"by": by, "groups": groups}


@router.get("/leakage", response_model=Leakage, responses=AS_CSV)
async def get_leakage(
    request: Request,
    engine: EngineDep,
    period: CutDep,
    unanswered_days: Annotated[int, Query(ge=1, le=365)] = 7,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
) -> Any:
    """Handed-off leads untouched before their SLA breached, MQLs sales neither accepted nor
    rejected within ``unanswered_days``, rejections and disqualifications by reason, source and
    campaign, recycled and re-qualified leads; each with its lead ids. As CSV: the rejections."""
    found = await views.leakage(
        engine, period, unanswered_days=unanswered_days, now=utcnow(), limit=limit
    )
    if wants_csv(request):
        return as_csv(found["rejections"], "rejections")
    return _period(period) | found


@router.get("/attribution", response_model=Attribution, responses=AS_CSV)
async def get_attribution(
    request: Request,
    engine: EngineDep,
    period: CutDep,
    by: Annotated[Literal["campaign", "source"], Query()] = "campaign",
    model: Annotated[list[domain.AttributionModel] | None, Query()] = None,
) -> Any:
    """Pipeline (opportunities) and revenue (won deals) of the period credited to campaigns or
    sources under each attribution model, split in minor units so that every model sums to the
    deals' amounts exactly, per currency."""
    models = model or list(domain.ATTRIBUTION_MODELS)
    credits = [
        {
            "model": r["model"],
            "by": by,
            "key": r["key"],
            "currency": r["currency"],
            "pipeline": domain.from_minor(r["pipeline"], r["currency"]),
            "revenue": domain.from_minor(r["revenue"], r["currency"]),
            "pipeline_minor": r["pipeline"],
            "revenue_minor": r["revenue"],
        }
        for r in await views.credited(engine, period, by=by, models=models)
    ]
    if wants_csv(request):
        return as_csv(credits, "attribution")
    return _period(period) | {"models": models, "credits": credits}


@router.get("/sourcing", response_model=Sourcing, responses=AS_CSV)
async def get_sourcing(
    request: Request, engine: EngineDep, period: CutDep, by: By | None = "month"
) -> Any:
    """The share of pipeline and revenue marketing sourced against sales, per month (or
    another group with ``by``) and currency."""
    rows = await views.sourcing(engine, period, by=by)
    if wants_csv(request):
        return as_csv(rows, "sourcing")
    return _period(period) | {"by": by, "rows": rows}
