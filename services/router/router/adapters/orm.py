"""router's tables, in the ``router`` schema."""

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

SCHEMA = "router"
metadata = service_metadata(SCHEMA)
TS = sa.DateTime(timezone=True)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("decision", pg.JSONB, nullable=False),
    sa.Column("config_version", sa.Text, nullable=False),
    sa.Column("cause_event_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("kind", sa.Text, nullable=False, server_default="assign"),
    sa.Column("queue", sa.Text),
    sa.Column("previous_owner_id", sa.Text),
    sa.Column("lead", pg.JSONB),
    # the order assignments were made in (a batch's share their created_at): what-ifs replay it
    sa.Column("seq", sa.BigInteger, sa.Identity(always=False), nullable=False),
    sa.Index("ix_assignments_created_at_seq", "created_at", "seq"),
)

rr_state = sa.Table(
    "round_robin_state",
    metadata,
    sa.Column("pool_id", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
)

rep_loads = sa.Table(
    "rep_daily_loads",
    metadata,
    sa.Column("rep_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("assigned", sa.Integer, nullable=False),
)

lead_owners = sa.Table(
    "lead_owners",
    metadata,
    sa.Column("lead_id", sa.Text, primary_key=True),
    sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("owner_id", sa.Text),
    sa.Column("queue", sa.Text),
    sa.Column("team_id", sa.Text),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("lead", pg.JSONB, nullable=False),
    sa.Column("assigned_at", TS, nullable=False),
)

configs = sa.Table(
    "configs",
    metadata,
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("document", pg.JSONB, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("activated_at", TS, nullable=False, index=True),
)

outbox = outbox_table(metadata)
processed = processed_events_table(metadata)
deliveries = deliveries_table(metadata)
endpoint_states = endpoint_states_table(metadata)
attempts = delivery_attempts_table(metadata)
common = CommonTables(
    outbox=outbox, processed=processed, deliveries=deliveries, endpoint_states=endpoint_states
)
