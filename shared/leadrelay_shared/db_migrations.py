"""Creating the common tables from a service's migrations.

The factories in ``db`` describe version 1 of the outbox, processed-events and delivery tables.
A later change to any of them is a new migration in every service, never an edit of version 1.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from .db import (
    deliveries_table,
    delivery_attempts_table,
    endpoint_states_table,
    outbox_table,
    processed_events_table,
    service_metadata,
)


def create_common_v1(bind: Connection, schema: str, *, deliveries: bool = False) -> None:
    metadata = service_metadata(schema)
    outbox_table(metadata, v1=True)
    processed_events_table(metadata)
    if deliveries:
        deliveries_table(metadata, v1=True)
    metadata.create_all(bind)


def drop_common_v1(bind: Connection, schema: str) -> None:
    metadata = service_metadata(schema)
    outbox_table(metadata, v1=True)
    processed_events_table(metadata)
    deliveries_table(metadata, v1=True)
    metadata.drop_all(bind, checkfirst=True)


def create_delivery_v2(bind: Connection, schema: str) -> None:
    """Endpoint states (410 disables) and the per-attempt log of the delivery queue."""
    metadata = service_metadata(schema)
    endpoint_states_table(metadata)
    delivery_attempts_table(metadata)
    metadata.create_all(bind)


def drop_delivery_v2(bind: Connection, schema: str) -> None:
    metadata = service_metadata(schema)
    endpoint_states_table(metadata)
    delivery_attempts_table(metadata)
    metadata.drop_all(bind, checkfirst=True)


def create_retention_indexes_v3(schema: str, *, deliveries: bool) -> None:
    """Indexes the retention sweep (``retention``) finds its rows by: old processed ids, and
    delivered webhooks by delivery time (a partial index: only delivered rows are swept)."""
    op.create_index(
        "ix_processed_events_processed_at", "processed_events", ["processed_at"], schema=schema
    )
    if deliveries:
        op.create_index(
            "ix_webhook_deliveries_delivered_at",
            "webhook_deliveries",
            ["delivered_at"],
            schema=schema,
            postgresql_where=sa.text("status = 'delivered'"),
        )


def drop_retention_indexes_v3(schema: str, *, deliveries: bool) -> None:
    if deliveries:
        op.drop_index("ix_webhook_deliveries_delivered_at", "webhook_deliveries", schema=schema)
    op.drop_index("ix_processed_events_processed_at", "processed_events", schema=schema)


def drop_outbox_published_at_v4(schema: str) -> None:
    """The relay deletes what it published, so the column was always empty."""
    op.drop_index("ix_outbox_unpublished", "outbox", schema=schema)
    op.drop_column("outbox", "published_at", schema=schema)


def add_outbox_published_at_v4(schema: str) -> None:
    op.add_column("outbox", sa.Column("published_at", sa.DateTime(timezone=True)), schema=schema)
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["id"],
        schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )


def add_traceparent_v5(schema: str, *, deliveries: bool) -> None:
    """Each waiting outbox row and webhook keeps its lead's trace context (W3C ``traceparent``),
    so the trace goes on when it is sent; empty when tracing is off."""
    op.add_column("outbox", sa.Column("traceparent", sa.Text), schema=schema)
    if deliveries:
        op.add_column("webhook_deliveries", sa.Column("traceparent", sa.Text), schema=schema)


def drop_traceparent_v5(schema: str, *, deliveries: bool) -> None:
    if deliveries:
        op.drop_column("webhook_deliveries", "traceparent", schema=schema)
    op.drop_column("outbox", "traceparent", schema=schema)
