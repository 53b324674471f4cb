"""What analytics' API takes and answers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


class StageFigures(BaseModel):
    stage: str
    entered: int = Field(description="entries into the stage in the period")
    balance: int = Field(description="leads in the stage now")
    next_stage: str | None
    reached_next: int | None = Field(
        description="of the entries, how many reached the next stage (or a later one) within "
        "the horizon"
    )
    cohort_conversion: float | None
    cohort_mature: bool | None = Field(
        description="false: some of the cohort have not had the whole horizon yet"
    )
    period_conversion: float | None = Field(
        description="entries into the next stage over entries into this one, in the period"
    )
    velocity_p50_s: float | None
    velocity_p90_s: float | None


class WaterfallGroup(BaseModel):
    group: str | None
    stages: list[StageFigures]


class Waterfall(BaseModel):
    since: str
    until: str
    by: str | None
    horizon_days: int
    groups: list[WaterfallGroup]


class Rates(BaseModel):
    inquiry_to_mql: float | None = Field(default=None, gt=0, le=1)
    mql_to_sal: float | None = Field(default=None, gt=0, le=1)
    sal_to_sql: float | None = Field(default=None, gt=0, le=1)
    sql_to_opportunity: float | None = Field(default=None, gt=0, le=1)
    opportunity_to_won: float | None = Field(default=None, gt=0, le=1)


PLAN_EXAMPLE: dict[str, Any] = {
    "revenue_target": 1000000,
    "avg_deal_size": 10000,
    "marketing_share": 1.0,
    "window_days": 180,
    "rates": {
        "inquiry_to_mql": 0.10,
        "mql_to_sal": 0.85,
        "sal_to_sql": 0.60,
        "sql_to_opportunity": 1.0,
        "opportunity_to_won": 0.30,
    },
}
"""A revenue target of 1,000,000 at 10,000 a deal with the example rates: 6,536 inquiries."""


class PlanIn(BaseModel):
    revenue_target: float = Field(gt=0)
    avg_deal_size: float | None = Field(default=None, gt=0)
    marketing_share: float = Field(default=1.0, gt=0, le=1)
    window_days: int = Field(default=180, ge=1, le=3650)
    rates: Rates = Rates()

    model_config = {"json_schema_extra": {"examples": [PLAN_EXAMPLE]}}


class PlanStageOut(BaseModel):
    stage: str
    needed: int = Field(description="how many the target needs in the window")
    run_rate: int = Field(description="entries in the last window_days")
    gap: int
    rate_to_next: float | None
    rate_source: str | None = Field(description="given, or measured on cohorts")
    sample: int | None = Field(description="leads a measured rate rests on")


class PlanOut(BaseModel):
    revenue_target: Decimal
    avg_deal_size: Decimal
    deal_size_source: str
    marketing_share: float
    window_days: int
    stages: list[PlanStageOut]
    reasons: list[str]


class SpeedPart(BaseModel):
    p50_s: float | None
    p90_s: float | None
    measured: int = Field(description="handoffs with both ends of this span")
    within_5m: int
    within_15m: int
    within_60m: int
    beyond_60m: int


class SpeedGroup(BaseModel):
    group: str | None
    handoffs: int = Field(description="first assignments in the period")
    touched: int = Field(description="of them, touched by their owner")
    system: SpeedPart = Field(description="form fill to assignment")
    rep: SpeedPart = Field(description="assignment to the owner's first touch")
    total: SpeedPart = Field(description="form fill to the owner's first touch")


class SpeedToLead(BaseModel):
    since: str
    until: str
    by: str | None
    groups: list[SpeedGroup]


class Leads(BaseModel):
    count: int
    lead_ids: list[str] = Field(description="the first of them, by id, up to `limit`")


class Rejection(BaseModel):
    feedback: str
    reason_code: str
    source: str | None
    campaign: str | None
    count: int
    lead_ids: list[str]


class Leakage(BaseModel):
    since: str
    until: str
    unanswered_days: int
    untouched_before_breach: Leads
    mql_unanswered: Leads
    recycled: Leads
    requalified: Leads
    rejections: list[Rejection]


class Credit(BaseModel):
    model: str
    by: str
    key: str | None = Field(description="the source or campaign credited")
    currency: str
    pipeline: Decimal
    revenue: Decimal
    pipeline_minor: int
    revenue_minor: int


class Attribution(BaseModel):
    since: str
    until: str
    models: list[str]
    credits: list[Credit]


class SourcingRow(BaseModel):
    group: str | None
    currency: str
    kind: str = Field(description="pipeline or revenue")
    origin: str = Field(description="marketing or sales: how the lead was first seen")
    deals: int
    amount: Decimal
    amount_minor: int
    share: float | None


class Sourcing(BaseModel):
    since: str
    until: str
    by: str | None
    rows: list[SourcingRow]
