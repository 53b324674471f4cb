"""Builders of realistic events for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from intake import domain as intake_domain
from leadrelay_shared.contracts import (
    ActivityLogged,
    EngagementRecorded,
    FeedbackReceived,
    FormSubmitted,
    LeadAssigned,
    Owner,
    Reason,
    Stage,
    StageChanged,
    lead_id_for,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def unique_email(prefix: str = "lead", domain: str = "northwind.example") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@{domain}"


def form(
    email: str | None = None,
    *,
    title: str | None = "VP Engineering",
    company: str | None = "Northwind",
    at: datetime = T0,
    event_id: uuid.UUID | None = None,
    country: str | None = "GB",
    company_size: int | None = None,
    industry: str | None = None,
) -> FormSubmitted:
    email = email or unique_email()
    lead = intake_domain.snapshot(
        email=email,
        first_name="Ada",
        company=company,
        title=title,
        country=country,
        company_size=company_size,
        industry=industry,
    )
    return intake_domain.form_submitted(
        lead=lead,
        event_id=event_id or uuid.uuid4(),
        occurred_at=at,
        received_at=at,
        source_system="web",
        fields={},
        consent={},
        utm={},
        page_url=None,
    )


def activity(lead_id: str, *, at: datetime = T0, actor: str = "rep-ana") -> ActivityLogged:
    return ActivityLogged(
        lead_id=lead_id, occurred_at=at, received_at=at, activity_type="call", actor_id=actor
    )


def lead_of(email: str) -> str:
    return lead_id_for(email)


def engagement(
    lead_id: str,
    kind: str = "page_view",
    *,
    url: str | None = None,
    at: datetime = T0,
    event_id: uuid.UUID | None = None,
) -> EngagementRecorded:
    return EngagementRecorded(
        lead_id=lead_id,
        occurred_at=at,
        received_at=at,
        engagement_type=kind,
        url=url,
        event_id=event_id or uuid.uuid4(),
    )


def feedback(
    lead_id: str,
    kind: str,
    *,
    reason: str | None = None,
    opportunity_id: str | None = None,
    at: datetime = T0,
    actor: str = "rep-ana",
) -> FeedbackReceived:
    return FeedbackReceived(
        lead_id=lead_id,
        occurred_at=at,
        received_at=at,
        feedback=kind,
        reason_code=reason,
        opportunity_id=opportunity_id,
        actor_id=actor,
    )


def assigned(
    lead_id: str,
    *,
    owner: str = "rep-ana",
    at: datetime = T0,
    grade: str = "A",
    engagement: int = 80,
    manager: bool = True,
) -> LeadAssigned:
    """Router's word that an MQL went to ``owner`` (what starts sla-monitor's clocks)."""
    f = form()
    return LeadAssigned(
        lead_id=lead_id,
        occurred_at=at,
        assignment_id=uuid.uuid4(),
        stage=Stage.MQL,
        owner=Owner(id=owner, name=owner.title(), time_zone="Europe/Paris"),
        team_id="sdr",
        strategy="round_robin",
        reasons=(),
        config_version="c1",
        lead=f.lead,
        cause_event_id=f.event_id,
        fit_grade=grade,
        engagement_score=engagement,
        manager=Owner(id="mgr-sam", name="Sam") if manager else None,
    )


def mql(email: str, occurred_at: datetime = T0) -> StageChanged:
    """Scoring's word that the lead of a form from ``email`` became an MQL."""
    f = form(email=email)
    return StageChanged(
        lead_id=f.lead_id,
        occurred_at=occurred_at,
        from_stage=Stage.INQUIRY,
        to_stage=Stage.MQL,
        reasons=(Reason(rule_id="mql", message="qualified"),),
        model_version="m",
        cause_event_id=f.event_id,
        lead=f.lead,
    )
