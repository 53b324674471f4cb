"""sla-monitor's tables, in the ``sla`` schema."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import (
    deliveries_table,
    delivery_attempts_table,
    endpoint_states_table,
    outbox_table,
    processed_events_table,
    service_metadata,
)
from leadrelay_shared.uow import CommonTables

SCHEMA = "sla"
metadata = service_metadata(SCHEMA)
TS = sa.DateTime(timezone=True)

clocks = sa.Table(
    "clocks",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("phase", sa.Integer, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("owner_name", sa.Text),
    sa.Column("owner_email", sa.Text),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("manager", pg.JSONB),
    sa.Column("policy_id", sa.Text, nullable=False),
    sa.Column("policy_version", sa.Text, nullable=False),
    sa.Column("zone", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("deadline_s", sa.Float, nullable=False),
    sa.Column("due_at", TS, nullable=False),
    sa.Column("due_text", sa.Text, nullable=False),
    sa.Column("warn_at", TS),
    sa.Column("escalate_at", TS),
    sa.Column("reroute_at", TS),
    sa.Column("next_level", sa.Text),
    sa.Column("next_at", TS),
    sa.Column("last_level", sa.Text),
    sa.Column("breached_at", TS),
    sa.Column("ended_at", TS),
    sa.Column("outcome", sa.Text),
    sa.Column("facts", pg.JSONB),
    sa.Column("traceparent", sa.Text),  # the lead's trace, which its alerts continue
    sa.Index("ix_clocks_next_at", "next_at", postgresql_where=sa.text("next_at IS NOT NULL")),
    sa.Index("ix_clocks_open_due", "due_at", postgresql_where=sa.text("status = 'open'")),
    sa.Index("ix_clocks_started_at", "started_at"),
)

touches = sa.Table(
    "touches",
    metadata,
    sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("actor_id", sa.Text),
    sa.Column("occurred_at", TS, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("clock_id", pg.UUID(as_uuid=True), nullable=False, index=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("level", sa.Text, nullable=False),
    sa.Column("policy_id", sa.Text, nullable=False),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text, nullable=False),
    sa.Column("scheduled_at", TS, nullable=False),
    sa.Column("fired_at", TS, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("reasons", pg.JSONB, nullable=False),
    sa.Index("ix_alerts_fired_at", "fired_at"),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_loaded_at", TS, nullable=False),
    sa.Column("last_activated_at", TS, nullable=False),
)

outbox = outbox_table(metadata)
processed = processed_events_table(metadata)
deliveries = deliveries_table(metadata)
endpoint_states = endpoint_states_table(metadata)
delivery_attempts = delivery_attempts_table(metadata)
common = CommonTables(outbox=outbox, processed=processed, deliveries=deliveries)
