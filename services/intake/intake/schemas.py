"""Request and response bodies of intake's API (the public, documented contract)."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from leadrelay_shared.contracts import ActivityType

Short = Field(default=None, max_length=200)


class FormFill(BaseModel):
    """A web form fill."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "ada@northwind.example", "first_name": "Ada", "last_name": "Lovelace",
        "company": "Northwind Traders", "title": "VP Engineering", "country": "GB",
        "company_size": 250, "industry": "Software", "page_url": "https://example.com/demo",
        "utm": {"utm_source": "google", "utm_campaign": "q4-demo"}, "consent": {"marketing": True},
    }]})

    email: str = Field(max_length=254)
    first_name: str | None = Short
    last_name: str | None = Short
    company: str | None = Short
    title: str | None = Short
    phone: str | None = Field(default=None, max_length=40)
    country: str | None = Field(default=None, max_length=60)
    region: str | None = Field(default=None, max_length=100)
    company_size: int | None = Field(default=None, ge=1, le=10_000_000)
    industry: str | None = Short
    fields: dict[str, str] = Field(default_factory=dict, max_length=50)
    consent: dict[str, bool] = Field(default_factory=dict, max_length=20)
    utm: dict[str, str] = Field(default_factory=dict, max_length=20)
    page_url: str | None = Field(default=None, max_length=2000)
    occurred_at: AwareDatetime | None = None
    source_system: str = Field(default="web", max_length=60)

    @model_validator(mode="after")
    def _bounded_free_fields(self) -> "FormFill":
        for name, mapping in (("fields", self.fields), ("utm", self.utm)):
            for key, value in mapping.items():
                if len(key) > 100 or len(value) > 2000:
                    raise ValueError(f"{name}: keys are at most 100 and values 2000 characters")
        return self


class ActivityIn(BaseModel):
    """A call, email or meeting logged by a sales system against a lead."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "email": "ada@northwind.example", "activity_type": "call", "actor_id": "rep-ana",
        "subject": "Intro call",
    }]})

    lead_id: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    activity_type: ActivityType
    actor_id: str | None = Field(default=None, max_length=100)
    subject: str | None = Field(default=None, max_length=500)
    occurred_at: AwareDatetime | None = None
    source_system: str = Field(default="crm", max_length=60)

    @model_validator(mode="after")
    def _lead_reference(self) -> "ActivityIn":
        if not self.lead_id and not self.email:
            raise ValueError("one of lead_id or email is required")
        return self


class Accepted(BaseModel):
    event_id: uuid.UUID
    lead_id: str
    status: str = "accepted"
