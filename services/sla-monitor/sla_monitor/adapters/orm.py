"""sla-monitor's tables, in the ``sla`` schema."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import (
    deliveries_table,
    outbox_table,
    processed_events_table,
    service_metadata,
)
from leadrelay_shared.uow import CommonTables

SCHEMA = "sla"
metadata = service_metadata(SCHEMA)

clocks = sa.Table(
    "clocks", metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("policy_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("worked_at", sa.DateTime(timezone=True)),
    sa.Column("breached_at", sa.DateTime(timezone=True)),
    sa.Index("ix_clocks_open_due", "due_at", postgresql_where=sa.text("status = 'open'")),
)

activities = sa.Table(
    "activities", metadata,
    sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("activity_type", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
processed = processed_events_table(metadata)
deliveries = deliveries_table(metadata)
common = CommonTables(outbox=outbox, processed=processed, deliveries=deliveries)
