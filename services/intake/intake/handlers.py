"""intake's use cases: build events from validated input and publish them durably."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import ValidationError

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

    async def publish_many(self, events: Sequence[Event]) -> list[Exception | None]:
        """Send all, wait for every acknowledgement (bounded); one outcome per event."""


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


async def submit_form(form: FormFill, *, publisher: Publisher, ctx: RequestContext,
                      source_event_id: str | None = None) -> Event:
    email = domain.normalise_email(form.email)
    lead = domain.snapshot(
        email=email, first_name=form.first_name, last_name=form.last_name, company=form.company,
        title=form.title, phone=form.phone, country=form.country, region=form.region,
        postal_code=form.postal_code,
        company_size=form.company_size, industry=form.industry)
    event = domain.form_submitted(
        lead=lead, event_id=_event_id(ctx, "forms", source_event_id),
        occurred_at=form.occurred_at or ctx.now, received_at=ctx.now,
        source_system=form.source_system, fields=form.fields, consent=form.consent, utm=form.utm,
        page_url=form.page_url, audit=_with_source_id(ctx.audit, source_event_id))
    await publisher.publish(event)
    return event


async def log_activity(activity: ActivityIn, *, publisher: Publisher,
                       ctx: RequestContext) -> Event:
    event = domain.activity_logged(
        lead_id=domain.lead_id_from(activity.lead_id, activity.email),
        event_id=_event_id(ctx, "activities"), occurred_at=activity.occurred_at or ctx.now,
        received_at=ctx.now, activity_type=activity.activity_type, actor_id=activity.actor_id,
        subject=activity.subject, source_system=activity.source_system, audit=ctx.audit)
    await publisher.publish(event)
    return event


def engagement_event(item: EngagementIn, ctx: RequestContext,
                     event_id: uuid.UUID | None = None) -> EngagementRecorded:
    email = domain.normalise_email(item.email) if item.email else None
    lead_id = item.lead_id or domain.lead_id_from(None, email)
    return EngagementRecorded(
        event_id=event_id or _event_id(ctx, "events", item.source_event_id), lead_id=lead_id,
        occurred_at=item.occurred_at or ctx.now, received_at=ctx.now,
        source_system=item.source_system, engagement_type=item.engagement_type,
        url=item.url, campaign=domain.clean_text(item.campaign),
        properties={k: (domain.clean_text(v) if isinstance(v, str) else v)
                    for k, v in item.properties.items()},
        email_domain=email.rsplit("@", 1)[1] if email else None,
        audit=_with_source_id(ctx.audit, item.source_event_id))


async def record_engagement(item: EngagementIn, *, publisher: Publisher,
                            ctx: RequestContext) -> Event:
    event = engagement_event(item, ctx)
    await publisher.publish(event)
    return event


async def give_feedback(lead_id: str, feedback: FeedbackIn, *, publisher: Publisher,
                        ctx: RequestContext) -> Event:
    event = FeedbackReceived(
        event_id=_event_id(ctx, f"feedback:{lead_id}"), lead_id=lead_id,
        occurred_at=feedback.occurred_at or ctx.now, received_at=ctx.now,
        source_system=feedback.source_system, feedback=feedback.feedback,
        reason_code=feedback.reason_code, actor_id=domain.clean_text(feedback.actor_id),
        note=domain.clean_text(feedback.note), opportunity_id=feedback.opportunity_id,
        amount=feedback.amount, currency=feedback.currency, audit=ctx.audit)
    await publisher.publish(event)
    return event


async def record_batch(items: Sequence[EngagementIn | list[ItemError]], *,
                       publisher: Publisher, ctx: RequestContext) -> BatchResult:
    """Turn each valid item into an event, publish them together, report every item (an item
    given as its errors was refused when the body was read)."""
    results: list[BatchItemResult] = []
    events: list[tuple[int, Event]] = []
    for index, item in enumerate(items):
        if isinstance(item, list):
            results.append(_rejected(index, item))
            continue
        item_id = None
        if not item.source_event_id and ctx.idempotency_key:
            item_id = domain.event_id_for(f"{ctx.idempotency_key}:{index}",
                                          f"{ctx.caller_scope}:batch")
        try:
            event = engagement_event(item, ctx, item_id)
        except InvalidInput as exc:
            results.append(_rejected(index, [
                ItemError(field=exc.field, rule=exc.rule, message=exc.message)]))
            continue
        events.append((index, event))
    outcomes = await publisher.publish_many([e for _, e in events]) if events else []
    unavailable = [ItemError(field="(item)", rule="not_acknowledged",
                             message="Kafka did not acknowledge in time; retry this item")]
    for (index, sent), failure in zip(events, outcomes, strict=True):
        results.append(BatchItemResult(
            index=index, status="unavailable" if failure else "accepted",
            event_id=sent.event_id, lead_id=sent.lead_id,
            errors=unavailable if failure else []))
    results.sort(key=lambda r: r["index"])
    count = {s: sum(1 for r in results if r["status"] == s)
             for s in ("accepted", "rejected", "unavailable")}
    return BatchResult(accepted=count["accepted"], rejected=count["rejected"],
                       unavailable=count["unavailable"], items=results)


def item_errors(exc: ValidationError) -> list[ItemError]:
    return [ItemError(field=".".join(str(p) for p in err["loc"]) or "(item)", rule=err["type"],
                      message=err["msg"]) for err in exc.errors()]


def _rejected(index: int, errors: list[ItemError]) -> BatchItemResult:
    return BatchItemResult(index=index, status="rejected", event_id=None, lead_id=None,
                           errors=errors)


def _with_source_id(audit: Audit | None, source_event_id: str | None) -> Audit | None:
    if audit is None or source_event_id is None:
        return audit
    return audit.model_copy(update={"source_event_id": source_event_id})

