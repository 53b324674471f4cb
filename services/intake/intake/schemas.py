"""Request and response bodies of intake's API (the public, documented contract)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from typing_extensions import TypedDict

from leadrelay_shared.contracts import (
    ActivityType,
    EngagementType,
    FeedbackType,
    RejectReason,
    Scalar,
)

Short = Field(default=None, max_length=200)


class FormFill(BaseModel):
    """A web form fill."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@northwind.example",
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "company": "Northwind Traders",
                    "title": "VP Engineering",
                    "country": "GB",
                    "company_size": 250,
                    "industry": "Software",
                    "page_url": "https://example.com/demo",
                    "utm": {"utm_source": "google", "utm_campaign": "q4-demo"},
                    "consent": {"marketing": True},
                }
            ]
        },
    )

    email: str = Field(max_length=254)
    first_name: str | None = Short
    last_name: str | None = Short
    company: str | None = Short
    title: str | None = Short
    phone: str | None = Field(default=None, max_length=40)
    country: str | None = Field(default=None, max_length=60)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str | None = Field(default=None, max_length=20)
    company_size: int | None = Field(default=None, ge=1, le=10_000_000)
    industry: str | None = Short
    fields: dict[str, str] = Field(default_factory=dict, max_length=50)
    consent: dict[str, bool] = Field(default_factory=dict, max_length=20)
    utm: dict[str, str] = Field(default_factory=dict, max_length=20)
    page_url: str | None = Field(default=None, max_length=2000)
    occurred_at: AwareDatetime | None = None
    source_system: str = Field(default="web", max_length=60)

    @model_validator(mode="after")
    def _bounded_free_fields(self) -> FormFill:
        for name, mapping in (("fields", self.fields), ("utm", self.utm)):
            for key, value in mapping.items():
                if len(key) > 100 or len(value) > 2000:
                    raise ValueError(f"{name}: keys are at most 100 and values 2000 characters")
        return self


class LeadReference(BaseModel):
    """Events about a known lead name it by ``lead_id`` or by ``email`` (normalised the same
    way)."""

    lead_id: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)

    @model_validator(mode="after")
    def _lead_reference(self) -> LeadReference:
        if not self.lead_id and not self.email:
            raise ValueError("one of lead_id or email is required")
        return self


class ActivityIn(LeadReference):
    """A call, email or meeting logged by a sales system against a lead."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@northwind.example",
                    "activity_type": "call",
                    "actor_id": "rep-ana",
                    "subject": "Intro call",
                }
            ]
        },
    )

    activity_type: ActivityType
    actor_id: str | None = Field(default=None, max_length=100)
    subject: str | None = Field(default=None, max_length=500)
    occurred_at: AwareDatetime | None = None
    source_system: str = Field(default="crm", max_length=60)


class EngagementIn(LeadReference):
    """A marketing-tool event: page view, email open or click, download, webinar, ad click, ..."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ada@northwind.example",
                    "engagement_type": "page_view",
                    "url": "https://example.com/pricing",
                    "campaign": "q4-demo",
                    "properties": {"title": "Pricing", "seconds_on_page": 42},
                    "source_event_id": "pv-20261123-0001",
                }
            ]
        },
    )

    engagement_type: EngagementType
    url: str | None = Field(default=None, max_length=2000)
    campaign: str | None = Field(default=None, max_length=200)
    properties: dict[str, Scalar] = Field(default_factory=dict, max_length=50)
    occurred_at: AwareDatetime | None = None
    source_system: str = Field(default="marketing", max_length=60)
    source_event_id: str | None = Field(
        default=None,
        max_length=200,
        description="The sending tool's own id for this event; a repeat is the same event",
    )

    @model_validator(mode="after")
    def _bounded_properties(self) -> EngagementIn:
        for key, value in self.properties.items():
            if len(key) > 100 or (isinstance(value, str) and len(value) > 2000):
                raise ValueError("properties: keys are at most 100 and values 2000 characters")
        return self


class FeedbackIn(BaseModel):
    """What sales did with a lead it was given."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"feedback": "accepted", "actor_id": "rep-ana"},
                {
                    "feedback": "rejected",
                    "reason_code": "no_budget",
                    "actor_id": "rep-ana",
                    "note": "Budget frozen until Q2",
                },
                {
                    "feedback": "converted",
                    "opportunity_id": "006Qw00000AbCdE",
                    "actor_id": "ae-dana",
                },
                {
                    "feedback": "won",
                    "opportunity_id": "006Qw00000AbCdE",
                    "amount": 48000,
                    "currency": "EUR",
                },
            ]
        },
    )

    feedback: FeedbackType
    reason_code: RejectReason | None = None
    actor_id: str | None = Field(default=None, max_length=100)
    note: str | None = Field(default=None, max_length=1000)
    opportunity_id: str | None = Field(default=None, max_length=100)
    amount: float | None = Field(default=None, ge=0, le=1e12)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    occurred_at: AwareDatetime | None = None
    source_system: str = Field(default="crm", max_length=60)

    @model_validator(mode="after")
    def _reason_when_rejecting(self) -> FeedbackIn:
        if self.feedback in ("rejected", "disqualified") and self.reason_code is None:
            raise ValueError(f"reason_code is required when feedback is {self.feedback}")
        if self.feedback not in ("rejected", "disqualified", "lost") and self.reason_code:
            raise ValueError("reason_code only applies to rejected, disqualified or lost")
        return self


class Accepted(BaseModel):
    event_id: uuid.UUID
    lead_id: str
    status: str = "accepted"


class BatchIn(BaseModel):
    """Up to the configured number of marketing events. Each item is validated on its own, so a
    bad item is reported and never holds back its neighbours."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "email": "ada@northwind.example",
                            "engagement_type": "email_click",
                            "campaign": "nov-newsletter",
                            "source_event_id": "click-1",
                        },
                        {
                            "email": "ada@northwind.example",
                            "engagement_type": "webinar_attended",
                            "properties": {"webinar": "Routing 101", "minutes": 48},
                            "source_event_id": "web-7",
                        },
                    ]
                }
            ]
        },
    )

    items: list[Any] = Field(
        min_length=1, json_schema_extra={"items": {"$ref": "#/components/schemas/EngagementIn"}}
    )


class ItemError(TypedDict):
    field: str
    rule: str
    message: str


class BatchItemResult(TypedDict):
    index: int
    status: Annotated[
        Literal["accepted", "rejected", "unavailable"],
        Field(description="accepted, rejected (fix the item) or unavailable (retry it)"),
    ]
    event_id: Annotated[str | None, Field(json_schema_extra={"format": "uuid"})]
    lead_id: str | None
    errors: list[ItemError]


class BatchResult(TypedDict):
    accepted: int
    rejected: int
    unavailable: int
    items: list[BatchItemResult]


class AdapterResult(BaseModel):
    """What a marketing-tool webhook turned into."""

    accepted: list[Accepted]
    ignored: list[str] = Field(
        default_factory=list, description="event types in the payload that leadrelay does not use"
    )
