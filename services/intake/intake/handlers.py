"""intake's use cases: build the event from validated input and publish it durably."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from leadrelay_shared.contracts import Event, lead_id_for

from . import domain
from .schemas import ActivityIn, FormFill


class Publisher(Protocol):
    async def publish(self, event: Event) -> None:
        """Return only once Kafka acknowledged with acks=all; raise NotAccepted otherwise."""


async def submit_form(form: FormFill, *, publisher: Publisher, now: datetime,
                      idempotency_key: str | None) -> Event:
    email = domain.normalise_email(form.email)
    lead = domain.snapshot(
        email=email, first_name=form.first_name, last_name=form.last_name, company=form.company,
        title=form.title, phone=form.phone, country=form.country, region=form.region,
        company_size=form.company_size, industry=form.industry)
    event = domain.form_submitted(
        lead=lead, event_id=domain.event_id_for(idempotency_key, "forms"),
        occurred_at=form.occurred_at or now, received_at=now, source_system=form.source_system,
        fields=form.fields, consent=form.consent, utm=form.utm, page_url=form.page_url)
    await publisher.publish(event)
    return event


async def log_activity(activity: ActivityIn, *, publisher: Publisher, now: datetime,
                       idempotency_key: str | None) -> Event:
    lead_id = activity.lead_id or lead_id_for(domain.normalise_email(activity.email or ""))
    event = domain.activity_logged(
        lead_id=lead_id, event_id=domain.event_id_for(idempotency_key, "activities"),
        occurred_at=activity.occurred_at or now, received_at=now,
        activity_type=activity.activity_type, actor_id=activity.actor_id,
        subject=activity.subject, source_system=activity.source_system)
    await publisher.publish(event)
    return event
