"""Event contracts: the frozen, versioned schemas of everything on Kafka.

Every event carries ``event_id`` (idempotency key downstream), ``lead_id`` (the Kafka key, so one
lead's events stay in order), a timezone-aware ``occurred_at`` and a ``schema_version``. Changes
are additive: a new optional field keeps ``schema_version``; a breaking change means a new type.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .ids import NameBasedIds

LEAD_NAMESPACE = uuid.UUID("6f1c7c4e-3a52-4b7e-9d0e-2f3c1a8b5e10")


class Topics:
    """Kafka topics, one per emitting service; partition counts are explicit."""

    INTAKE = "leadrelay.intake.v1"
    SCORING = "leadrelay.scoring.v1"
    ROUTING = "leadrelay.routing.v1"
    SLA = "leadrelay.sla.v1"
    DEAD_LETTER = "leadrelay.deadletter.v1"

    PARTITIONS: ClassVar[dict[str, int]] = {
        INTAKE: 6,
        SCORING: 6,
        ROUTING: 6,
        SLA: 3,
        DEAD_LETTER: 1,
    }


_LEAD_IDS = NameBasedIds(LEAD_NAMESPACE)


@functools.lru_cache(maxsize=1 << 16)
def lead_id_for(normalised_email: str) -> str:
    """Deterministic lead id: the same person (by normalised email) always maps to one key,
    ``str(uuid.uuid5(LEAD_NAMESPACE, normalised_email))``. Remembered for the most recent 65,536
    addresses: one lead sends many events, and a name-based UUID costs a few microseconds."""
    return _LEAD_IDS.text(normalised_email)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reason(Frozen):
    """Why a decision went the way it did: a stable rule id and a sentence for people."""

    rule_id: str
    message: str


class Stage(StrEnum):
    """The demand waterfall."""

    INQUIRY = "inquiry"
    MQL = "mql"
    SAL = "sal"
    SQL = "sql"
    OPPORTUNITY = "opportunity"
    WON = "won"
    LOST = "lost"
    NURTURE = "nurture"
    RECYCLED = "recycled"
    DISQUALIFIED = "disqualified"


class LeadSnapshot(Frozen):
    """What downstream services need to know about a lead, carried on the event."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    phone: str | None = None
    country: str | None = None
    region: str | None = None
    postal_code: str | None = None
    company_size: int | None = None
    industry: str | None = None
    email_domain: str | None = None
    is_free_email: bool = False


class Event(Frozen):
    """Base of every event. ``event_type`` and ``topic`` are fixed per class."""

    event_type: ClassVar[str]
    topic: ClassVar[str]
    source: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    lead_id: str = Field(min_length=1, max_length=64)
    occurred_at: AwareDatetime
    schema_version: int = 1


class Audit(Frozen):
    """Where an accepted event came from, for audit; no raw IP address, only a keyed hash."""

    source_key_id: str | None = None
    client_ip_hash: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    source_event_id: str | None = None


class IntakeEvent(Event):
    """Base of what intake accepts: when it arrived and, for audit, from where."""

    topic: ClassVar[str] = Topics.INTAKE
    source: ClassVar[str] = "/leadrelay/intake"

    received_at: AwareDatetime
    audit: Audit | None = None


class FormSubmitted(IntakeEvent):
    event_type: ClassVar[str] = "io.leadrelay.form.submitted"

    source_system: str = "web"
    lead: LeadSnapshot
    fields: dict[str, str] = Field(default_factory=dict)
    consent: dict[str, bool] = Field(default_factory=dict)
    utm: dict[str, str] = Field(default_factory=dict)
    page_url: str | None = None


ActivityType = Literal["call", "email", "meeting"]


class ActivityLogged(IntakeEvent):
    event_type: ClassVar[str] = "io.leadrelay.activity.logged"

    source_system: str = "crm"
    activity_type: ActivityType
    actor_id: str | None = None
    subject: str | None = None


EngagementType = Literal[
    "page_view",
    "email_open",
    "email_click",
    "content_download",
    "webinar_registered",
    "webinar_attended",
    "ad_click",
    "product_signup",
    "demo_requested",
]
Scalar = str | int | float | bool | None


class EngagementRecorded(IntakeEvent):
    """A marketing-tool event: what the lead did (page view, email click, webinar, ...)."""

    event_type: ClassVar[str] = "io.leadrelay.engagement.recorded"

    source_system: str = "marketing"
    engagement_type: EngagementType
    url: str | None = None
    campaign: str | None = None
    properties: dict[str, Scalar] = Field(default_factory=dict)
    email_domain: str | None = None


FeedbackType = Literal["accepted", "rejected", "disqualified", "converted", "won", "lost"]
RejectReason = Literal[
    "not_a_fit",
    "no_budget",
    "no_authority",
    "no_need",
    "bad_timing",
    "bad_contact_data",
    "competitor",
    "duplicate",
    "existing_customer",
    "spam",
    "student",
    "other",
]


class FeedbackReceived(IntakeEvent):
    """Sales tells marketing what became of a lead: accepted, rejected (why), converted, closed."""

    event_type: ClassVar[str] = "io.leadrelay.feedback.received"

    source_system: str = "crm"
    feedback: FeedbackType
    reason_code: RejectReason | None = None
    actor_id: str | None = None
    note: str | None = None
    opportunity_id: str | None = None
    amount: float | None = None
    currency: str | None = None


class ScoreContribution(Frozen):
    rule_id: str
    points: int
    message: str
    event_id: uuid.UUID | None = None


class LeadScored(Event):
    event_type: ClassVar[str] = "io.leadrelay.lead.scored"
    topic: ClassVar[str] = Topics.SCORING
    source: ClassVar[str] = "/leadrelay/scoring"

    fit_score: int
    engagement_score: int
    contributions: tuple[ScoreContribution, ...]
    model_version: str
    cause_event_id: uuid.UUID
    fit_grade: str | None = None


class StageChanged(Event):
    event_type: ClassVar[str] = "io.leadrelay.stage.changed"
    topic: ClassVar[str] = Topics.SCORING
    source: ClassVar[str] = "/leadrelay/scoring"

    from_stage: Stage | None
    to_stage: Stage
    reasons: tuple[Reason, ...]
    model_version: str
    cause_event_id: uuid.UUID
    lead: LeadSnapshot
    fit_score: int = 0
    engagement_score: int = 0
    fit_grade: str | None = None
    actor: str | None = None
    cycle: int = 0


class LeadErased(Event):
    """A lead's personal data was erased on request (GDPR art. 17); each service scrubs its copy."""

    event_type: ClassVar[str] = "io.leadrelay.lead.erased"
    topic: ClassVar[str] = Topics.SCORING
    source: ClassVar[str] = "/leadrelay/scoring"

    erased_fields: tuple[str, ...]
    requested_by: str | None = None


class Owner(Frozen):
    id: str
    name: str
    email: str | None = None
    time_zone: str | None = None


class LeadAssigned(Event):
    event_type: ClassVar[str] = "io.leadrelay.lead.assigned"
    topic: ClassVar[str] = Topics.ROUTING
    source: ClassVar[str] = "/leadrelay/router"

    assignment_id: uuid.UUID
    stage: Stage
    owner: Owner
    team_id: str
    strategy: str
    reasons: tuple[Reason, ...]
    config_version: str
    lead: LeadSnapshot
    cause_event_id: uuid.UUID
    queue: str | None = None
    account_id: str | None = None
    territory: str | None = None
    previous_owner_id: str | None = None
    reassignment: bool = False
    summary: str | None = None
    manager: Owner | None = None
    segment: str | None = None
    fit_grade: str | None = None
    fit_score: int | None = None
    engagement_score: int | None = None


class RerouteRequested(Event):
    """Someone asks router to give a lead to another rep (sla-monitor on breach, an operator).

    ``assignment_id`` names the assignment to replace; a request about an assignment that is no
    longer current is stale and ignored, so a late or repeated request never re-routes twice.
    """

    event_type: ClassVar[str] = "io.leadrelay.reroute.requested"
    topic: ClassVar[str] = Topics.SLA
    source: ClassVar[str] = "/leadrelay/sla-monitor"

    assignment_id: uuid.UUID | None = None
    reason: str = Field(min_length=1, max_length=500)
    requested_by: str = Field(min_length=1, max_length=200)


class SlaBreached(Event):
    event_type: ClassVar[str] = "io.leadrelay.sla.breached"
    topic: ClassVar[str] = Topics.SLA
    source: ClassVar[str] = "/leadrelay/sla-monitor"

    clock_id: uuid.UUID
    assignment_id: uuid.UUID
    owner_id: str
    team_id: str
    policy_id: str
    started_at: AwareDatetime
    due_at: AwareDatetime
    reasons: tuple[Reason, ...]


EVENT_TYPES: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (
        FormSubmitted,
        ActivityLogged,
        EngagementRecorded,
        FeedbackReceived,
        LeadScored,
        StageChanged,
        LeadErased,
        LeadAssigned,
        RerouteRequested,
        SlaBreached,
    )
}


@dataclass(frozen=True)
class Serialised:
    """An event already written as its contract's JSON, for the outbox.

    For the hottest event of all: scoring writes a ``lead.scored`` with every contribution for
    nearly every intake event, so it skips validating a model only to dump it again. The code that
    builds one is held, by test, to the JSON the contract model would write for the same values."""

    event_id: uuid.UUID
    event_type: str
    topic: str
    lead_id: str
    json: str

    def model_dump_json(self) -> str:
        return self.json

    def parse(self) -> Event:
        return EVENT_TYPES[self.event_type].model_validate_json(self.json)


def event_from_payload(event_type: str, payload: dict[str, Any]) -> Event:
    """Rebuild an event from its stored JSON (the outbox keeps type and payload)."""
    return EVENT_TYPES[event_type].model_validate(payload)


def as_utc(moment: datetime) -> datetime:

    if moment.tzinfo is None:
        raise ValueError("naive datetime: leadrelay only handles timezone-aware times")
    return moment.astimezone(UTC)
