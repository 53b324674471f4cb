"""Ops alerts about webhooks: a dead-lettered delivery queues a ``webhook.dead_lettered`` message
to every endpoint subscribed to it (a Slack channel, an ops webhook), in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from leadrelay_shared.clock import utcnow
from leadrelay_shared.delivery import Delivery, Endpoint, Outcome, envelope

from . import orm

OPS_EVENT = "webhook.dead_lettered"


def dead_letter_alert(
    endpoints: Callable[[], dict[str, Endpoint]],
) -> Callable[[AsyncConnection, Delivery, Outcome], Any]:
    async def on_dead(conn: AsyncConnection, row: Delivery, outcome: Outcome) -> None:
        if row.event_type == OPS_EVENT:
            return  # an alert about an alert would loop
        why = (
            "the endpoint answered 410 Gone and is disabled"
            if outcome.gone
            else f"gave up after {row.attempts} attempts"
        )
        data = {
            "delivery_id": row.id,
            "endpoint_id": row.endpoint_id,
            "event_type": row.event_type,
            "attempts": row.attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "summary": f"webhook {row.id} to {row.endpoint_id}: {why} "
            f"(last error: {outcome.error}); replay with "
            f"POST /v1/deliveries/{row.id}/replay",
        }
        payload = envelope(OPS_EVENT, utcnow(), data)
        rows = [
            {
                "id": f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, row.id + '/' + ep.id).hex}",
                "endpoint_id": ep.id,
                "url": ep.url,
                "event_type": OPS_EVENT,
                "lead_id": row.lead_id,
                "payload": payload,
            }
            for ep in endpoints().values()
            if ep.wants(OPS_EVENT) and ep.id != row.endpoint_id and ep.event_types
        ]
        if rows:
            await conn.execute(insert(orm.deliveries).on_conflict_do_nothing(), rows)

    return on_dead
