"""intake's use cases: build events from validated input and publish them durably."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import ValidationError

from leadrelay_shared.codec import KafkaRecord, encode_payload, json_time
from leadrelay_shared.contracts import Audit, EngagementRecorded, Event, FeedbackReceived

from . import domain
from .errors import InvalidInput
from .schemas import (
    ActivityIn,
    BatchItemResult,
    BatchResult,
    EngagementIn,
    FeedbackIn,
    FormFill,
    ItemError,
)


class Publisher(Protocol):
    async def publish(self, event: Event) -> None:
        """Return only once Kafka acknowledged with acks=all; raise NotAccepted otherwise."""

    async def publish_records(self, records: Sequence[KafkaRecord]) -> list[Exception | None]:
        """Send events already encoded, all together; wait for every acknowledgement (bounded).
        One outcome per record: None when acknowledged, else why not."""


@dataclass(frozen=True)
class RequestContext:
    """What a use case needs to know about the request besides its body."""

    now: datetime
    caller_scope: str
    idempotency_key: str | None = None
    audit: Audit | None = None


def _event_id(ctx: RequestContext, kind: str, source_event_id: str | None = None) -> uuid.UUID:
    if source_event_id:
        return domain.event_id_for(source_event_id, f"{ctx.caller_scope}:{kind}:source")
    return domain.event_id_for(ctx.idempotency_key, f"{ctx.caller_scope}:{kind}")


async def submit_form(
    form: FormFill, *, publisher: Publisher, ctx: RequestContext, source_event_id: str | None = None
) -> Event:
    email = domain.normalise_email(form.email)
    lead = domain.snapshot(
        email=email,
        first_name=form.first_name,
        last_name=form.last_name,
        company=form.company,
        title=form.title,
        phone=form.phone,
        country=form.country,
        region=form.region,
        postal_code=form.postal_code,
        company_size=form.company_size,
        industry=form.industry,
    )
    event = domain.form_submitted(
        lead=lead,
        event_id=_event_id(ctx, "forms", source_event_id),
        occurred_at=form.occurred_at or ctx.now,
        received_at=ctx.now,
        source_system=form.source_system,
        fields=form.fields,
        consent=form.consent,
        utm=form.utm,
        page_url=form.page_url,
        audit=_with_source_id(ctx.audit, source_event_id),
    )
    await publisher.publish(event)
    return event


async def log_activity(activity: ActivityIn, *, publisher: Publisher, ctx: RequestContext) -> Event:
    event = domain.activity_logged(
        lead_id=domain.lead_id_from(activity.lead_id, activity.email),
        event_id=_event_id(ctx, "activities"),
        occurred_at=activity.occurred_at or ctx.now,
        received_at=ctx.now,
        activity_type=activity.activity_type,
        actor_id=activity.actor_id,
        subject=activity.subject,
        source_system=activity.source_system,
        audit=ctx.audit,
    )
    await publisher.publish(event)
    return event


def engagement_data(
    item: EngagementIn, *, event_id: str, received_at: str, audit: dict[str, Any] | None
) -> dict[str, Any]:
    """The ``engagement.recorded`` event of ``item`` as JSON-ready data, its fields in the
    contract's order, so that ``EngagementRecorded`` validates it and writes the same JSON (a
    property test holds both to that). A batch sends this without building a model per item,
    which keeps batches of hundreds of events cheap."""
    email = domain.normalise_email(item.email) if item.email else None
    sid = item.source_event_id
    return {
        "event_id": event_id,
        "lead_id": item.lead_id or domain.lead_id_from(None, email),
        "occurred_at": json_time(item.occurred_at) if item.occurred_at else received_at,
        "schema_version": 1,
        "received_at": received_at,
        "audit": {**audit, "source_event_id": sid} if audit is not None and sid else audit,
        "source_system": item.source_system,
        "engagement_type": item.engagement_type,
        "url": item.url,
        "campaign": domain.clean_text(item.campaign),
        "properties": {
            k: (domain.clean_text(v) if isinstance(v, str) else v)
            for k, v in item.properties.items()
        },
        "email_domain": email.rsplit("@", 1)[1] if email else None,
    }


async def record_engagement(
    item: EngagementIn, *, publisher: Publisher, ctx: RequestContext
) -> Event:
    event = EngagementRecorded.model_validate(
        engagement_data(
            item,
            event_id=str(_event_id(ctx, "events", item.source_event_id)),
            received_at=json_time(ctx.now),
            audit=_audit_data(ctx),
        )
    )
    await publisher.publish(event)
    return event


async def give_feedback(
    lead_id: str, feedback: FeedbackIn, *, publisher: Publisher, ctx: RequestContext
) -> Event:
    event = FeedbackReceived(
        event_id=_event_id(ctx, f"feedback:{lead_id}"),
        lead_id=lead_id,
        occurred_at=feedback.occurred_at or ctx.now,
        received_at=ctx.now,
        source_system=feedback.source_system,
        feedback=feedback.feedback,
        reason_code=feedback.reason_code,
        actor_id=domain.clean_text(feedback.actor_id),
        note=domain.clean_text(feedback.note),
        opportunity_id=feedback.opportunity_id,
        amount=feedback.amount,
        currency=feedback.currency,
        audit=ctx.audit,
    )
    await publisher.publish(event)
    return event


async def record_batch(
    items: Sequence[EngagementIn | list[ItemError]], *, publisher: Publisher, ctx: RequestContext
) -> BatchResult:
    """Turn each valid item into an event, publish them together, report every item (an item
    given as its errors was refused when the body was read)."""
    results: list[BatchItemResult | None] = [None] * len(items)
    sent: list[tuple[int, dict[str, Any]]] = []
    received_at, audit = json_time(ctx.now), _audit_data(ctx)  # once for every item
    for index, item in enumerate(items):
        if isinstance(item, list):
            results[index] = _rejected(index, item)
            continue
        try:
            data = engagement_data(
                item,
                event_id=_batch_item_id(ctx, index, item),
                received_at=received_at,
                audit=audit,
            )
        except InvalidInput as exc:
            results[index] = _rejected(
                index, [ItemError(field=exc.field, rule=exc.rule, message=exc.message)]
            )
            continue
        sent.append((index, data))
    records = [encode_payload(EngagementRecorded.event_type, data) for _, data in sent]
    outcomes = await publisher.publish_records(records) if records else []
    unavailable = [
        ItemError(
            field="(item)",
            rule="not_acknowledged",
            message="Kafka did not acknowledge in time; retry this item",
        )
    ]
    count = {"accepted": 0, "rejected": len(items) - len(sent), "unavailable": 0}
    for (index, data), failure in zip(sent, outcomes, strict=True):
        status: Literal["accepted", "unavailable"] = "unavailable" if failure else "accepted"
        count[status] += 1
        results[index] = BatchItemResult(
            index=index,
            status=status,
            event_id=data["event_id"],
            lead_id=data["lead_id"],
            errors=unavailable if failure else [],
        )
    return BatchResult(
        accepted=count["accepted"],
        rejected=count["rejected"],
        unavailable=count["unavailable"],
        items=[r for r in results if r is not None],
    )


def _audit_data(ctx: RequestContext) -> dict[str, Any] | None:
    """The request's audit record as ``engagement_data`` takes it."""
    return ctx.audit.model_dump() if ctx.audit is not None else None


def _batch_item_id(ctx: RequestContext, index: int, item: EngagementIn) -> str:
    """The item's own source id names its event; else the batch's Idempotency-Key and the
    item's place in it do; else a new id."""
    if item.source_event_id:
        return domain.event_id_text(item.source_event_id, f"{ctx.caller_scope}:events:source")
    if ctx.idempotency_key:
        return domain.event_id_text(f"{ctx.idempotency_key}:{index}", f"{ctx.caller_scope}:batch")
    return str(uuid.uuid4())


def item_errors(exc: ValidationError) -> list[ItemError]:
    return [
        ItemError(
            field=".".join(str(p) for p in err["loc"]) or "(item)",
            rule=err["type"],
            message=err["msg"],
        )
        for err in exc.errors()
    ]


def _rejected(index: int, errors: list[ItemError]) -> BatchItemResult:
    return BatchItemResult(
        index=index, status="rejected", event_id=None, lead_id=None, errors=errors
    )


def _with_source_id(audit: Audit | None, source_event_id: str | None) -> Audit | None:
    if audit is None or source_event_id is None:
        return audit
    return audit.model_copy(update={"source_event_id": source_event_id})
